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
# The long runs of `make reliability`: requests per operation and kind of the API fuzzing, and the
# load (README, Reliability). The load runs twice, the DCS simulator, moto and the stack each in
# their own process: LOAD_RATE with the AWS side in memory (the layer's fakes: the bundle's own
# cost), then LOAD_MOTO_RATE with every DynamoDB and SQS call in moto, whose CPU per call (~25 ms
# a request, plus ~20 ms of botocore in the functions) caps that run far below AWS.
FUZZ_EXAMPLES ?= 150
LOAD_RATE     ?= 200
LOAD_SECONDS  ?= 60
LOAD_MOTO_RATE    ?= 15
LOAD_MOTO_SECONDS ?= 30
# pip-audit reads PyPI's vulnerability data (pypi.org/pypi/<name>/<version>/json). Where that is
# unreachable the audit cannot run: `fail` (default) stops with a message, `warn` says so and goes on.
AUDIT_IF_UNREACHABLE ?= fail
AUDIT_PROBE   := https://pypi.org/pypi/pip/24.0/json

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
	@echo "make reliability  the long fault runs, API fuzzing and the load test (LOAD_RATE=$(LOAD_RATE) req/s x $(LOAD_SECONDS) s; moto: $(LOAD_MOTO_RATE) req/s x $(LOAD_MOTO_SECONDS) s)"
	@echo "make audit      pip-audit of the pinned dependencies against PyPI's vulnerability data"
	@echo "make lint       ruff, ruff format --check, mypy"
	@echo "make validate   cfn-lint and sam validate --lint"
	@echo "make build      sam build (Python 3.13, arm64)"
	@echo "make enrich     run the scheduled enrichment job now (make send-batch: the signals job)"
	@echo "make bench      benchmarks; writes tests/perf/results/latest.json"
	@echo "make faults     the long fault suite alone, as a table of figures"
	@echo "make replay-dlq re-drive dead letters after a fix (QUEUE=signals|enrich, ENV=..., ARGS=\"--reason R --dry-run\")"
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

.PHONY: reliability
reliability: venv  ## fault suite, long API fuzzing, load; each stops by itself, all on loopback
	$(PY) -m tests.reliability.api_fuzz --examples $(FUZZ_EXAMPLES)
	$(PY) -m tests.reliability.load --aws memory --rate $(LOAD_RATE) --seconds $(LOAD_SECONDS)
	$(PY) -m tests.reliability.load --aws moto --rate $(LOAD_MOTO_RATE) --seconds $(LOAD_MOTO_SECONDS)
	$(PY) -m pytest -m reliability $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make reliability: no test is marked reliability"; else exit $$status; fi

.PHONY: audit
audit: venv  ## pip-audit of the layer's and the dev pins (and what they pull in), strict: nothing unaudited
	@if $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' "$(AUDIT_PROBE)" 2>/dev/null; then \
	  $(VENV)/bin/pip-audit --strict --progress-spinner off -r layers/common/requirements.txt -r requirements/dev.txt; \
	else \
	  echo "make audit: PyPI's vulnerability data ($(AUDIT_PROBE)) cannot be read from this machine:" >&2; \
	  echo "make audit: the dependencies were NOT audited. Run it where pypi.org answers." >&2; \
	  [ "$(AUDIT_IF_UNREACHABLE)" = warn ]; \
	fi

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

.PHONY: faults
faults: venv  ## the long fault suite alone, printed as a markdown table of figures (about 8 min)
	$(PY) -m tests.reliability.faults

# Dead letters back to their queue after a fix, without a second delivery of what was delivered.
QUEUE        ?= signals
STACK        ?= aam-dcs-$(ENV)
AWS_ENDPOINT ?= http://127.0.0.1:5000

.PHONY: replay-dlq replay-dlq-local
replay-dlq: venv  ## make replay-dlq [QUEUE=enrich] [ENV=prod] ARGS="--reason invalid_request --dry-run"
	PYTHONPATH=layers/common $(PY) -m aam_dcs.jobs.replay --queue $(QUEUE) --stack $(STACK) --region $(AWS_REGION) $(ARGS)
replay-dlq-local: venv  ## the same on `make run`'s stack: AWS_ENDPOINT=<the moto endpoint it printed>
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing PYTHONPATH=layers/common \
	$(PY) -m aam_dcs.jobs.replay --queue $(QUEUE) --stack aam-dcs-local --region $(AWS_REGION) --endpoint-url $(AWS_ENDPOINT) $(ARGS)

.PHONY: clean
clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
