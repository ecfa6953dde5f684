# fanout — the front door. `make help` lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# The Terraform provider comes from an offline mirror when one is on this machine (the
# folder above `registry.terraform.io`); set TF_PLUGIN_DIR= (empty) to use the registry.
TF_PLUGIN_DIR ?= $(patsubst %/registry.terraform.io,%,$(firstword $(shell find / -maxdepth 4 -type d -name registry.terraform.io -not -path '/proc/*' 2>/dev/null)))
export TF_PLUGIN_DIR

# make run knobs
DEVICES ?= 100
VALUES ?= 1000
WINDOWS ?= 1
SEED ?= 7

.PHONY: help venv package run test test-fast lint tf-check clean

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  make run knobs: DEVICES=$(DEVICES) VALUES=$(VALUES) WINDOWS=$(WINDOWS) SEED=$(SEED)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

venv: $(VENV)/.installed ## Create .venv with pinned dependencies and dev tools

package: venv ## Build build/lambda/<function>.zip for Lambda's python3.12 (ARCH=arm64 for Graviton)
	$(PY) infra/package.py --arch $(or $(ARCH),x86_64)

run: package ## Run the pipeline end to end on the local emulator (DEVICES, VALUES, WINDOWS, SEED)
	$(PY) -m localstack.run --devices $(DEVICES) --values $(VALUES) --windows $(WINDOWS) --seed $(SEED)

lint: venv ## ruff (format and lint) and mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

tf-check: ## terraform fmt -check and validate on infra/
	terraform -chdir=infra fmt -check -recursive
	TF_DATA_DIR=$(CURDIR)/build/tf-validate terraform -chdir=infra init -backend=false -input=false -no-color $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR)) >/dev/null
	TF_DATA_DIR=$(CURDIR)/build/tf-validate terraform -chdir=infra validate -no-color

test: lint tf-check package ## Everything CI runs: lint, Terraform checks, unit, integration and end-to-end tests
	$(BIN)/pytest

test-fast: venv ## Unit tests only (no emulator, no sockets beyond the sample API)
	$(BIN)/pytest tests/unit -q

clean: ## Remove build output, caches and the virtual environment
	rm -rf build .venv .pytest_cache .mypy_cache .ruff_cache infra/.terraform infra/.terraform.lock.hcl
