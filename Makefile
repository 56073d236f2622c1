# Two commands set up a fresh machine: `make run` (the whole bundle on the local stack)
# and `make test` (lint, template validation and every test). Both create what they need.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
TOOLS       := .tools
PY          := $(VENV)/bin/python
SAM         := $(TOOLS)/bin/sam
AWS_REGION  ?= us-west-2
ENV         ?= dev
API_PORT    ?= 3000
DCS_PORT    ?= 8700
PYTEST_ARGS ?= -n auto

# The interpreter for the venvs: Python 3.13 (the Lambda runtime) where it runs, else python3.
# pyenv shims exist even when that version is not selected, so each candidate is run, not just found.
BASE_PYTHON := $(shell for p in python3.13 "$$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python3.13" python3; do \
	if PYENV_VERSION=3.13.0 "$$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then \
	PYENV_VERSION=3.13.0 "$$p" -c 'import sys; print(sys.executable)'; break; fi; done)
PY313_DIR   := $(shell dirname "$(BASE_PYTHON)")

.PHONY: help
help:
	@echo "make run        the whole bundle on the local stack (API+page :$(API_PORT), DCS simulator :$(DCS_PORT))"
	@echo "make test       lint, template validation and all tests"
	@echo "make test-slow  the long scale runs (10,000-customer enrichment)"
	@echo "make lint       ruff, ruff format --check, mypy"
	@echo "make validate   cfn-lint and sam validate --lint"
	@echo "make build      sam build (Python 3.13, arm64)"
	@echo "make enrich     run the scheduled enrichment job now (make send-batch: the signals job)"
	@echo "make bench      benchmarks; writes tests/perf/results/latest.json"
	@echo "make deploy     sam deploy --config-env $(ENV)"

$(VENV)/.installed: requirements/dev.txt layers/common/requirements.txt
	@test -n "$(BASE_PYTHON)" || { echo "no Python 3.12+ found" >&2; exit 1; }
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

$(TOOLS)/.installed: requirements/tools.txt
	@test -n "$(BASE_PYTHON)" || { echo "no Python 3.12+ found" >&2; exit 1; }
	$(BASE_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements/tools.txt
	@touch $@

.PHONY: venv tools
venv: $(VENV)/.installed
tools: $(TOOLS)/.installed

.PHONY: lint
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: validate
validate: venv tools
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region $(AWS_REGION)

.PHONY: test
test: lint validate
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-slow
test-slow: venv  ## the long runs: enrichment of 10,000 customers through moto and the simulator
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

.PHONY: build
build: tools
	PATH="$(PY313_DIR):$$PATH" PYENV_VERSION=3.13.0 $(SAM) build

.PHONY: deploy
deploy: build
	$(SAM) deploy --config-env $(ENV)

.PHONY: run
run: venv
	$(PY) -m local.run --api-port $(API_PORT) --dcs-port $(DCS_PORT)

.PHONY: enrich send-batch
enrich: venv  ## the scheduled enrichment job, now, with the schedule's input (on `make run`'s stack if it runs)
	$(PY) -m local.jobs enrich --api-port $(API_PORT)
send-batch: venv  ## the scheduled send_signals job, now
	$(PY) -m local.jobs send-batch --api-port $(API_PORT)

.PHONY: bench
bench: venv
	$(PY) -m tests.perf.bench

.PHONY: clean
clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
