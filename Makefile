# infae_kit — one-step environment, tests and the main reproduction job.
#   make reproduce   set up .venv (if needed) and run notebooks 01–02 on ml-1m and magazine; each run is merged
#                    into the recorded results in figures/ and the generated documents are rendered again
#   make test        set up .venv (if needed) and run every tier: unit tests, the real-data slow tests, every
#                    notebook under nbval and their results against tests/notebook_expectations.json
#   make test-fast   the unit tier only (synthetic data, a few minutes)
#   make test-x64    the kernel and ∞-AE tests again with JAX_ENABLE_X64=1 (CI runs it after make test)
#   make privacy-frontier  DISTILL-CF's privacy–utility frontier (notebook 06 on magazine and douban-book)
#   make docs        render figures/results.md, docs/results.md and benchmarks/README.md from the record
#   make lab         set up .venv (if needed) and start JupyterLab (notebooks/NN_topic.py open as notebooks)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infae_kit-installed
# JupyterLab settings of this venv: .py files open as notebooks (jupytext), no autosave (see jupyter/).
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json
NOTEBOOKS ?= 01 02
DATASETS  ?= ml-1m magazine

.PHONY: env notebook-filter lab clean-notebooks test test-fast test-notebooks test-slow test-x64 docs reproduce table1 distill distill-netflix-shape sampling scale netflix-shape benchmark privacy-frontier benchmark-distill benchmark-distill-memory benchmark-distill-paper benchmark-competitors benchmark-validation benchmark-protocol-sweeps benchmark-sweep benchmark-scale benchmark-netflix-reader benchmark-netflix-shape lock sync-notebooks clean-venv

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
	$(BIN)/python -m pytest tests -m "not slow and not notebook" -p no:cacheprovider

# The notebook tier: every notebook at its CI size under nbval, then its results JSON against the recorded values.
test-notebooks: env
	$(BIN)/python -m pytest notebooks tests/test_notebook_results.py --nbval-lax --nbval-current-env -p no:cacheprovider

# The slow tier: real-data runs (the paper's files; skipped where they are absent) and the slowest unit tests.
test-slow: env
	$(BIN)/python -m pytest tests -m "slow and not notebook" -p no:cacheprovider

test-x64: export JAX_ENABLE_X64 = 1
test-x64: env
	$(BIN)/python -m pytest tests/test_ntk.py tests/test_infinite_ae.py -p no:cacheprovider

docs: env
	$(BIN)/python -m infae_kit.runner --gather

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

# DISTILL-CF on netflix-shape with the paper's Netflix grid (mu = 500, gamma in {500, 700}, lr 0.006, the inner
# lambda re-picked at every validation), NETFLIX_DISTILL_STEPS outer steps of 4,096 streamed users, validation on
# a seeded sample of 20,000 users, every 40 steps. Every run is checkpointed every 20 steps in runs/distill_cache:
# rerunning the target resumes where the cache stops, a finished run is read back, and a larger
# NETFLIX_DISTILL_STEPS continues the cached shorter run. Needs the netflix-shape dataset.
NETFLIX_DISTILL_STEPS ?= 300
distill-netflix-shape: env
	$(BIN)/python -m infae_kit.distill.search --dataset netflix-shape --preset paper-code \
		--grid budget=500 gamma=500,700 lr=0.006 batch_size=4096 val_users=20000 log_freq=40 \
		--steps $(NETFLIX_DISTILL_STEPS) --out runs/distill_netflix-shape.json

# Figures 1-4, 10, 12-14 (notebooks 04 sampling and 05 noise). Every cell is cached in runs/sweep_cache: from
# scratch about 1-2 hours for ml-1m on 2 cores (mostly the DISTILL-CF runs), a few minutes from the cache.
sampling: export INFAE_DOWNLOAD ?= 1
sampling: env
	$(BIN)/python -m infae_kit.runner --notebooks 04 05 --datasets $(DATASETS)

# DISTILL-CF's privacy–utility frontier (notebook 06, §9): de-anonymization against % of full-data NDCG@10 over
# mu (2, 5, 10, 16 % of the users) x tau (0.5, 5) at each dataset's gamma and step count, with the control, on
# magazine (its recorded DISTILL-CF configuration) and douban-book (notebook 06's own summary, gamma 50, tau 5). Every
# summary and every point is cached in runs/: a rerun reads them, an interrupted run resumes. Measured from scratch
# on 2 shared cores: magazine 34 min (this grid); douban-book 16 min for mu 2/5/10 % x tau 5 (its mu = 500 summary
# 7.5 min, each setting 1.5-3.5 min). ML-1M (its summary alone took 56 min recorded):
#   .venv/bin/python -m infae_kit.runner --notebooks 06 --datasets ml-1m
FRONTIER_BUDGET_PERCENTS ?= 2,5,10,16
FRONTIER_TAUS ?= 0.5,5
privacy-frontier: export INFAE_DOWNLOAD ?= 1
privacy-frontier: env
	$(BIN)/python -m infae_kit.runner --notebooks 06 --datasets magazine \
		-p frontier_budget_percents $(FRONTIER_BUDGET_PERCENTS) -p frontier_taus $(FRONTIER_TAUS)
	$(BIN)/python -m infae_kit.runner --notebooks 06 --datasets douban-book \
		-p distill_gamma 50 -p distill_tau 5.0 -p distill_steps 150 \
		-p frontier_budget_percents $(FRONTIER_BUDGET_PERCENTS) -p frontier_taus $(FRONTIER_TAUS)

# The Netflix-shaped fractal expansions of ML-1M (netflix-shape-small, then netflix-shape), built into the kit's
# cache ($INFAE_CACHE_DIR or ~/.cache/infae_kit) with their build time, peak memory and statistics against ML-1M.
# Already cached: a few seconds. Writes benchmarks/results/fractal.json.
netflix-shape: export INFAE_DOWNLOAD ?= 1
netflix-shape: env
	$(BIN)/python benchmarks/bench_fractal.py --datasets netflix-shape-small netflix-shape

# The same, timed from scratch in a temporary cache folder (the kit's cache is left as it is).
benchmark-netflix-shape: export INFAE_DOWNLOAD ?= 1
benchmark-netflix-shape: env
	$(BIN)/python benchmarks/bench_fractal.py --datasets netflix-shape-small netflix-shape --fresh

# The Netflix Prize loader on a generated 10M-rating fixture in the Prize's format (temporary, about 210 MB),
# extrapolated to the Prize's 100,480,507 ratings. Writes benchmarks/results/netflix_reader.json.
benchmark-netflix-reader: env
	$(BIN)/python benchmarks/bench_netflix_reader.py --ratings 10000000

# Notebook 08 (landmark ∞-AE: quality against m, the Netflix protocol table, time and memory against users) on
# SCALE_DATASETS with the full preset (the Netflix protocol: make scale SCALE_DATASETS=netflix-shape).
SCALE_DATASETS ?= ml-1m douban-book
scale: export INFAE_DOWNLOAD ?= 1
scale: env
	$(BIN)/python -m infae_kit.runner --notebooks 08 --datasets $(SCALE_DATASETS) -p preset full

# Fit time and peak RSS of landmark ∞-AE (m = 1,000) against users, exact ∞-AE beside it; on a GPU when JAX has one.
SCALE_BENCH_DATASET ?= ml-1m
SCALE_BENCH_USERS ?= 500,1000,2000,4000,6040
benchmark-scale: env
	$(BIN)/python benchmarks/bench_scale.py --dataset $(SCALE_BENCH_DATASET) --landmarks 1000 --users $(SCALE_BENCH_USERS) --exact

benchmark: env
	$(BIN)/python benchmarks/bench_infinite_ae.py --dataset ml-1m

benchmark-distill: env
	$(BIN)/python benchmarks/bench_distill.py --dataset magazine --gammas 50 200 800 --noise hash threefry
	$(BIN)/python benchmarks/bench_distill.py --dataset ml-1m --gammas 50 200 800 --noise hash threefry --steps 3

# Peak RSS of DISTILL-CF against gamma and against the number of users at a fixed batch of 1,024 streamed users
# (ML-1M against a 50,000-user synthetic matrix of ML-1M's items and density, netflix-shape-small and
# netflix-shape), with no Gumbel draw kept for the backward pass and with the default 1,024 MiB of them.
benchmark-distill-memory: export INFAE_DOWNLOAD ?= 1
benchmark-distill-memory: env
	$(BIN)/python benchmarks/bench_distill.py --dataset ml-1m --memory --gammas 50 200 800 --users 50000 \
		--user-datasets netflix-shape-small netflix-shape --batch-size 1024 --noise hash --steps 2 \
		--sampler-memory 0 1024

# s/step side by side with the paper's released code: make benchmark-distill-paper PAPER_CODE=/path/to/distill_cf
benchmark-distill-paper: env
	@test -n "$(PAPER_CODE)" || { echo "set PAPER_CODE to a checkout of noveens/distill_cf"; exit 2; }
	PYTHON=$(BIN)/python benchmarks/paper_code_distill.sh $(PAPER_CODE) magazine ml-1m

benchmark-sweep: env
	$(BIN)/python benchmarks/bench_sweep.py --dataset ml-1m

benchmark-competitors: env
	$(BIN)/python benchmarks/bench_competitors.py --dataset ml-1m

# The paper's validation split against the validation holdout as a way to pick λ (∞-AE, EASE; DISTILL-CF on
# Magazine at μ = 100 and 500). About 25 minutes on 2 cores. Writes benchmarks/results/validation_protocol-*.json.
benchmark-validation: env
	$(BIN)/python benchmarks/bench_validation_protocol.py --datasets ml-1m --holdout-seeds 42 0 1 2 3
	$(BIN)/python benchmarks/bench_validation_protocol.py --datasets magazine --holdout-seeds 42 0 1 2 3 \
	  --distill-runs 100 100:0:0 100:1:1 500

benchmark-protocol-sweeps: env
	$(BIN)/python benchmarks/bench_protocol_sweeps.py --dataset magazine --seeds 42 1 2

sync-notebooks: env
	$(BIN)/jupytext --sync notebooks/*.py

lock: env
	$(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(neural-tangents|infae)' > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
