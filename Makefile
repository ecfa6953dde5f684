# fanout — the front door. `make help` lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# Terraform: no version check over the network. The provider comes from an offline mirror
# when one is found (or named by TF_PLUGIN_DIR; empty means the registry): see
# localstack/terraform.py.
export CHECKPOINT_DISABLE := 1

# make run knobs
DEVICES ?= 100
VALUES ?= 1000
WINDOWS ?= 1
SEED ?= 7
FAULTS ?=

.PHONY: help venv package run test test-fast bench lint tf-check clean

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  make run knobs: DEVICES=$(DEVICES) VALUES=$(VALUES) WINDOWS=$(WINDOWS) SEED=$(SEED) FAULTS=$(FAULTS)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

venv: $(VENV)/.installed ## Create .venv with pinned dependencies and dev tools

package: venv ## Build build/lambda/<function>.zip for Lambda's python3.12 (ARCH=arm64 for Graviton)
	$(PY) infra/package.py --arch $(or $(ARCH),x86_64)

run: package ## Run the pipeline end to end on the local emulator (DEVICES, VALUES, WINDOWS, SEED, FAULTS)
	$(PY) -m localstack.run --devices $(DEVICES) --values $(VALUES) --windows $(WINDOWS) --seed $(SEED) --faults "$(FAULTS)"

bench: venv ## Benchmarks against same-run baselines; results in build/bench.json (SECTIONS=consumer writer)
	$(PY) -m bench $(SECTIONS)

lint: venv ## ruff (format and lint) and mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

tf-check: venv ## terraform fmt -check and validate on infra/
	$(PY) -m localstack.terraform check

test: lint package ## Everything CI runs: lint, unit, integration (Terraform checks and apply included), end-to-end
	$(BIN)/pytest

test-fast: venv ## Unit tests only (no emulator, no sockets beyond the sample API)
	$(BIN)/pytest tests/unit -q

clean: ## Remove build output, caches and the virtual environment
	rm -rf build .venv .pytest_cache .mypy_cache .ruff_cache infra/.terraform infra/.terraform.lock.hcl
