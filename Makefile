# Set-up and entry points. Every target creates or reuses .venv by itself, so a fresh clone needs
# nothing but `make demo` (the offline demo) or `make test` (the test suite).
#
# The venv is (re)installed only when the content of pyproject.toml or requirements/lock.txt changes:
# the stamp file inside .venv is named after their hash (content, not file times, so a fresh clone or a
# copy of the repo reuses a venv whose install is current).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml requirements/lock.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
PROFILE := --workflow-profile workflow/profiles/default
CORES ?= all

# No tool may phone home: the pipeline runs offline.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export FLWR_TELEMETRY_ENABLED := 0
export RAY_USAGE_STATS_ENABLED := 0

STAGE ?= demo
STAGE_CONFIG_demo := config/demo.yaml
STAGE_CONFIG_paper := config/config.yaml
STAGE_CONFIG_paper-real := config/paper-real.yaml
STAGE_CONFIG_paper-real-brain-mri := config/paper-real-brain-mri.yaml
STAGE_CONFIG_paper-real-small := config/paper-real-small.yaml

.PHONY: venv demo paper paper-real paper-real-small run report pull test lint format clean-demo

venv: $(STAMP)

# NO_INSTALL=1 uses $(VENV) as it is (an environment managed elsewhere, or a test driving this
# Makefile from a copy of the repository) instead of installing this checkout into it.
NO_INSTALL ?=

$(STAMP):
ifeq ($(NO_INSTALL),)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)
else
	@test -x $(BIN)/snakemake || { echo "NO_INSTALL is set but $(BIN)/snakemake is missing"; exit 1; }
endif

# Runs go through equitable_fl.run: one run per folder at a time, and after a kill the same command
# clears the stale Snakemake lock and resumes (see README "When things go wrong").
RUN := $(BIN)/python -m equitable_fl.run $(PROFILE)

demo: $(STAMP)
	$(RUN) --cores $(CORES) --configfile config/demo.yaml

# Self-contained HTML report (every figure captioned) of a finished run: make report [STAGE=paper]
report: $(STAMP)
	$(BIN)/snakemake $(PROFILE) --configfile $(STAGE_CONFIG_$(STAGE)) --report results/$(STAGE)/report.html

# The full paper grid (needs the datasets: downloads them, or see README "Datasets offline").
paper: $(STAMP)
	$(RUN) --cores $(CORES) --configfile config/config.yaml

# The paper's claims on real MNIST, Fashion-MNIST and Brain-MRI (README "The paper's claims on real
# data"; the datasets go in data/manual/<dataset>/ first). Two configs, run one after the other:
# clients.count and training are global keys, and Brain-MRI's 5,712 training images call for fewer
# clients than MNIST's 60,000. paper-real-small is the same path in a few minutes, one seed.
paper-real: $(STAMP)
	$(RUN) --cores $(CORES) --configfile config/paper-real.yaml
	$(RUN) --cores $(CORES) --configfile config/paper-real-brain-mri.yaml

paper-real-small: $(STAMP)
	$(RUN) --cores $(CORES) --configfile config/paper-real-small.yaml

# Any config: make run CONFIG=path/to/config.yaml [ARGS="target files or more Snakemake options"]
CONFIG ?= config/demo.yaml
ARGS ?=
run: $(STAMP)
	$(RUN) --cores $(CORES) $(ARGS) --configfile $(CONFIG)

# `make pull STAGE=<a stage of dvc.yaml>` (demo, paper, paper-real, paper-real-brain-mri,
# paper-real-small): fetch a stage's versioned results from the DVC remote. Pulled files carry the
# time of the pull, not of their creation, so they are then re-dated in workflow order
# (`snakemake --touch`): Snakemake sees them as up to date instead of retraining them. The pulled MLflow
# store still points at the folder it was made in; the last run rebuilds it here from the results
# (store_moved → track → compare → tables: nothing is trained), so the folder is then fully current.
pull: $(STAMP)
	$(BIN)/dvc pull $(STAGE)
	$(BIN)/snakemake $(PROFILE) --cores 1 --configfile $(STAGE_CONFIG_$(STAGE)) --touch --quiet rules
	$(RUN) --cores $(CORES) --configfile $(STAGE_CONFIG_$(STAGE))

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint --configfile config/demo.yaml

format: $(STAMP)
	$(BIN)/ruff format src tests workflow/scripts benchmarks
	$(BIN)/snakefmt Snakefile workflow

clean-demo:
	rm -rf results/demo
