# Set-up and entry points. Every target creates or reuses .venv by itself, so a fresh clone needs
# nothing but `make demo` (the offline demo) or `make test` (the test suite).
#
# The venv is (re)installed only when pyproject.toml or requirements/lock.txt change: the stamp file
# inside .venv records the last successful install.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.equitable-fl-installed
PROFILE := --workflow-profile workflow/profiles/default
CORES ?= all

# No tool may phone home: the pipeline runs offline.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export FLWR_TELEMETRY_ENABLED := 0

.PHONY: venv demo test lint format clean-demo

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake $(PROFILE) --cores $(CORES) --configfile config/demo.yaml

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
