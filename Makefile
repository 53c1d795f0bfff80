# Image Task Gateway: every command a developer or CI needs.
# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SAMVENV := .venv-sam
export SAM_CLI_TELEMETRY := 0
SAM_CLI_VERSION := 1.170.0
STAMP  := $(VENV)/.installed

.PHONY: help venv demo devstack test lint typecheck template-check unit e2e bench clean schema

help:
	@echo "make demo      start devstack (moto + provider simulator + local API) and run the demo"
	@echo "make devstack  start devstack and keep it running (prints URL and API key)"
	@echo "make test      install everything the tests need, lint, type-check, check the template, run all tests"
	@echo "make bench     run the benchmarks (bench/results.json, bench/RESULTS.md, README section)"

$(STAMP): requirements-dev.txt layers/common/requirements.txt layers/common/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e layers/common
	@touch $(STAMP)

venv: $(STAMP)

$(SAMVENV)/.installed:
	@test -x $(SAMVENV)/bin/python || $(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

demo: $(STAMP)
	$(PY) -m devstack demo

devstack: $(STAMP)
	$(PY) -m devstack up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

template-check: $(STAMP) $(SAMVENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAMVENV)/bin/sam validate --lint --template template.yaml --region us-east-1

unit: $(STAMP)
	$(PY) -m pytest tests -m "not e2e"

e2e: $(STAMP)
	$(PY) -m pytest tests -m e2e

test: lint typecheck template-check
	$(PY) -m pytest tests -p no:cacheprovider

clean:
	rm -rf $(VENV) $(SAMVENV) .aws-sam .devstack .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP)
	$(PY) -m bench

schema: $(STAMP)
	$(PY) -c "import json; from image_gateway.models.events import event_detail_schema as s; \
	open('events/schema/image-task-event.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
