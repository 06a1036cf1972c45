# infae_kit — one-step environment, tests and the main reproduction job.
#   make reproduce   set up .venv (if needed) and run notebooks 01–02 on ml-1m and magazine -> figures/
#   make test        set up .venv (if needed) and run the unit tests + every notebook under nbval
#   make lab         set up .venv (if needed) and start JupyterLab (notebooks/NN_topic.py open as notebooks)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infae_kit-installed
# JupyterLab settings of this venv: .py files open as notebooks (jupytext), no autosave (see jupyter/).
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json
NOTEBOOKS ?= 01 02
DATASETS  ?= ml-1m magazine

.PHONY: env notebook-filter lab clean-notebooks test test-fast reproduce table1 distill sampling benchmark benchmark-distill benchmark-competitors benchmark-sweep lock sync-notebooks clean-venv

$(STAMP): requirements/lock.txt requirements/neural-tangents.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "infae_kit pins are for Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/neural-tangents.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	touch $(STAMP)

$(LABCONFIG): jupyter/labconfig/default_setting_overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

# git stores notebooks/*.ipynb through tools/notebook_filter.py (declared in .gitattributes): never any outputs,
# whatever JupyterLab saved. Standard-library Python, so it works with or without the venv.
notebook-filter:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git config filter.notebook-outputs.clean "$(PYTHON) tools/notebook_filter.py" && \
	  git config filter.notebook-outputs.smudge cat && \
	  git config filter.notebook-outputs.required true; \
	fi

env: $(STAMP) $(LABCONFIG) notebook-filter

lab: env
	$(BIN)/jupyter lab

# Remove outputs and run metadata from the working copies of the notebooks (what git stores is always clean).
clean-notebooks:
	$(PYTHON) tools/notebook_filter.py --in-place notebooks/*.ipynb

test: env
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

test-fast: env
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

# Missing data files are fetched from their public sources (checksum-verified) unless INFAE_DOWNLOAD=0.
reproduce: export INFAE_DOWNLOAD ?= 1
reproduce: env
	$(BIN)/python -m infae_kit.runner --notebooks $(NOTEBOOKS) --datasets $(DATASETS)

# The full Table 1 (every competitor trained with its recorded configuration) on ml-1m and magazine.
table1: export INFAE_DOWNLOAD ?= 1
table1: env
	$(BIN)/python -m infae_kit.runner --notebooks 02 --datasets $(DATASETS) -p competitors all

# DISTILL-CF (notebook 03) with each dataset's recorded configuration. From scratch on 2 idle cores about
# 15 minutes for magazine and 30 for ml-1m; with the supports already in runs/distill_cache, a few minutes.
distill: export INFAE_DOWNLOAD ?= 1
distill: env
	$(BIN)/python -m infae_kit.runner --notebooks 03 --datasets $(DATASETS)

# Figures 1-4, 10, 12-14 (notebooks 04 sampling and 05 noise). Every cell is cached in runs/sweep_cache: from
# scratch about 1-2 hours for ml-1m on 2 cores (mostly the DISTILL-CF runs), a few minutes from the cache.
sampling: export INFAE_DOWNLOAD ?= 1
sampling: env
	$(BIN)/python -m infae_kit.runner --notebooks 04 05 --datasets $(DATASETS)

benchmark: env
	$(BIN)/python benchmarks/bench_infinite_ae.py --dataset ml-1m

benchmark-distill: env
	$(BIN)/python benchmarks/bench_distill.py --dataset magazine --gammas 50 200 800 --noise hash threefry
	$(BIN)/python benchmarks/bench_distill.py --dataset ml-1m --gammas 50 200 800 --noise hash threefry --steps 3

benchmark-sweep: env
	$(BIN)/python benchmarks/bench_sweep.py --dataset ml-1m

benchmark-competitors: env
	$(BIN)/python benchmarks/bench_competitors.py --dataset ml-1m

sync-notebooks: env
	$(BIN)/jupytext --sync notebooks/*.py

lock: env
	$(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(neural-tangents|infae)' > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
