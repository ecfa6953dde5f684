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
EMULATOR ?= moto

.PHONY: help venv package run test test-fast e2e-localstack bench lint tf-check clean deploy deploy-local

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  make run knobs: DEVICES=$(DEVICES) VALUES=$(VALUES) WINDOWS=$(WINDOWS) SEED=$(SEED) EMULATOR=$(EMULATOR) FAULTS=$(FAULTS)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

venv: $(VENV)/.installed ## Create .venv with pinned dependencies and dev tools

package: venv ## Build build/lambda/<function>.zip for Lambda's python3.12 and print their sizes (ARCH=arm64 for Graviton)
	$(PY) infra/package.py --arch $(or $(ARCH),x86_64)

# Terraform for the deploy targets: the provider mirror when there is one (TF_PLUGIN_DIR, or
# found as localstack/terraform.py finds it), the registry otherwise.
TF_INIT = mirror=$$($(PY) -c 'from localstack.terraform import plugin_dir; print(plugin_dir() or "")'); \
	terraform -chdir=infra init -input=false $${mirror:+-plugin-dir=$$mirror}
DEPLOY_LOCAL := $(CURDIR)/build/deploy-local

deploy-local: package ## Apply infra/ to an emulator you run at AWS_ENDPOINT_URL (default http://127.0.0.1:5000); state in build/deploy-local/
	@unset AWS_PROFILE AWS_DEFAULT_PROFILE && \
	export TF_DATA_DIR="$(DEPLOY_LOCAL)/.terraform" AWS_ACCESS_KEY_ID=testing \
		AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing && \
	$(TF_INIT) && \
	terraform -chdir=infra apply -input=false -auto-approve -state="$(DEPLOY_LOCAL)/terraform.tfstate" \
		-var-file=emulator.tfvars \
		-var 'aws_endpoint_url=$(or $(AWS_ENDPOINT_URL),http://127.0.0.1:5000)' \
		-var 'api_base_url=$(or $(API_BASE_URL),http://127.0.0.1:8080/v1)' \
		-var 'architecture=$(or $(ARCH),x86_64)' $(TF_ARGS)

deploy: package ## Apply infra/ to the AWS account of your credentials (API_BASE_URL required; TF_ARGS passed on); state in infra/
	@test -n "$(API_BASE_URL)" || { echo "make deploy: set API_BASE_URL, the REST API's base URL (https://host/path)" >&2; exit 2; }
	@test -z "$$AWS_ENDPOINT_URL" || { echo "make deploy: AWS_ENDPOINT_URL is set ($$AWS_ENDPOINT_URL) but this target deploys to AWS: unset it, or use make deploy-local" >&2; exit 2; }
	@$(TF_INIT)
	terraform -chdir=infra apply -input=false \
		-var 'api_base_url=$(API_BASE_URL)' -var 'architecture=$(or $(ARCH),x86_64)' $(TF_ARGS)

run: package ## Run the pipeline end to end on a local emulator (DEVICES, VALUES, WINDOWS, SEED, FAULTS, EMULATOR)
	$(PY) -m localstack.run --devices $(DEVICES) --values $(VALUES) --windows $(WINDOWS) --seed $(SEED) --faults "$(FAULTS)" --emulator $(EMULATOR)

bench: venv ## Benchmarks against same-run baselines; results in build/bench.json (SECTIONS=consumer writer scale; default all)
	$(PY) -m bench $(SECTIONS)

lint: venv ## ruff (format and lint) and mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

tf-check: venv ## terraform fmt -check and validate on infra/
	$(PY) -m localstack.terraform check

test: lint package ## Everything CI runs: lint, unit, integration (Terraform included), end-to-end on moto and LocalStack
	$(BIN)/pytest
	$(MAKE) --no-print-directory e2e-localstack

e2e-localstack: package ## The end-to-end suite (normal and fault runs) against LocalStack, without Docker
	E2E_EMULATOR=localstack $(BIN)/pytest tests/e2e

test-fast: venv ## Unit tests only (no emulator, no sockets beyond the sample API)
	$(BIN)/pytest tests/unit -q

clean: ## Remove build output, caches and the virtual environment
	rm -rf build .venv .pytest_cache .mypy_cache .ruff_cache infra/.terraform infra/.terraform.lock.hcl
