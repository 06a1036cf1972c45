# infae_kit — one-step environment, tests and the main reproduction job.
#   make reproduce   set up .venv (if needed) and run notebooks 01–02 on ml-1m and magazine -> figures/
#   make test        set up .venv (if needed) and run the unit tests + every notebook under nbval
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infae_kit-installed
NOTEBOOKS ?= 01 02
DATASETS  ?= ml-1m magazine

.PHONY: env test test-fast reproduce table1 distill distill-netflix-shape sampling benchmark benchmark-distill benchmark-distill-memory benchmark-distill-paper benchmark-competitors benchmark-sweep lock sync-notebooks clean-venv

$(STAMP): requirements/lock.txt requirements/neural-tangents.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "infae_kit pins are for Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/neural-tangents.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	touch $(STAMP)

env: $(STAMP)

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

# DISTILL-CF on netflix-shape with the paper's Netflix grid (mu = 500, gamma in {500, 700}, lr 0.006, the inner
# lambda re-picked at every validation), NETFLIX_DISTILL_STEPS outer steps of 4,096 streamed users, validation on
# a seeded sample of 20,000 users. Every run is checkpointed every 20 steps in runs/distill_cache: rerunning the
# target resumes where the cache stops, and a finished run is read back. Needs the netflix-shape dataset.
NETFLIX_DISTILL_STEPS ?= 300
distill-netflix-shape: env
	$(BIN)/python -m infae_kit.distill.search --dataset netflix-shape --preset paper-code \
		--grid budget=500 gamma=500,700 lr=0.006 batch_size=4096 val_users=20000 --steps $(NETFLIX_DISTILL_STEPS) \
		--out runs/distill_netflix-shape.json

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

# Peak RSS of DISTILL-CF against gamma and against the number of users at a fixed batch of 1,024 streamed users
# (ML-1M against a 50,000-user synthetic matrix of ML-1M's items and density).
benchmark-distill-memory: env
	$(BIN)/python benchmarks/bench_distill.py --dataset ml-1m --memory --gammas 50 200 800 --users 50000 \
		--batch-size 1024 --noise hash --steps 2

# s/step side by side with the paper's released code: make benchmark-distill-paper PAPER_CODE=/path/to/distill_cf
benchmark-distill-paper: env
	@test -n "$(PAPER_CODE)" || { echo "set PAPER_CODE to a checkout of noveens/distill_cf"; exit 2; }
	PYTHON=$(BIN)/python benchmarks/paper_code_distill.sh $(PAPER_CODE) magazine ml-1m

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
