# Image Task Gateway: every command a developer or CI needs.
# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SAMVENV := .venv-sam
SAM    := $(SAMVENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
SAM_CLI_VERSION := 1.170.0
# AWS CLI v1 from PyPI (it vendors its own botocore), next to sam: the README's `aws` commands.
AWS_CLI_VERSION := 1.46.3
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# The functions' runtime, Python 3.13: `sam build` needs a real interpreter on PATH (pyenv's
# shims fail inside sam) and the layer's bytecode is made by it. Found on PATH, else among
# pyenv's versions; override with `make build PYTHON313=/path/to/python3.13`.
PYTHON313 ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -n 1)
NEED_PYTHON313 = test -n "$(PYTHON313)" || { echo "No python3.13 found. sam build needs the \
	functions' runtime, Python 3.13, as a real interpreter: install it (pyenv install 3.13, \
	uv python install 3.13 or your OS's python3.13 package) or pass PYTHON313=/path/to/python3.13; \
	or build in a container: $(SAM) build --use-container" >&2; exit 1; }
SAM_BUILD_DIR ?= .aws-sam/build
DEPLOY_FLAGS ?= --guided
# Python 3.13 with what Lambda's runtime adds (boto3, at the dev pin): imports the built
# artefact in the tests and in `make bench`.
RUNTIMEVENV := .venv-runtime
# checkov, the IaC scanner, in its own venv (its pins clash with the dev tools'); .checkov.yaml
# lists the findings accepted on purpose and why.
CHECKOVVENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

.PHONY: help venv tools browser build deploy delete demo devstack docs test lint typecheck template-check unit \
	e2e bench clean schema botocore-models iam-check test-before-suite unit-gate suite-e2e suite-rest

help:
	@echo "make demo      start devstack (moto + provider simulator + local API) and run the demo"
	@echo "make devstack  start devstack and keep it running (prints URL and API key)"
	@echo "make test      install everything the tests need, lint, type-check, check the template, run all tests"
	@echo "               (tests/unit first, with a 90% coverage gate on the service layer)"
	@echo "make docs      build the docs site into site/ (mkdocs build --strict)"
	@echo "make iam-check take each IAM permission out in turn: a named scenario must fail (docs/iam-mutations.md)"
	@echo "make bench     run the benchmarks (bench/results.json, bench/RESULTS.md, docs/performance.md)"
	@echo "make build     sam build (needs python3.13; installs the SAM CLI in .venv-sam)"
	@echo "make deploy    make build, then sam deploy --guided (DEPLOY_FLAGS= to reuse samconfig.toml)"
	@echo "make delete    sam delete: the stack, except what it retains (docs/deploy.md)"
	@echo "make tools     install sam and aws in .venv-sam/bin"

$(STAMP): requirements-dev.txt requirements-nodeps.txt layers/common/requirements.txt layers/common/pyproject.toml \
		client/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e layers/common -e client
	$(PY) -m pip install --quiet --no-deps $$(grep -E '^aws-sam-translator==' requirements-nodeps.txt)
	@touch $(STAMP)

venv: $(STAMP)

$(SAMVENV)/.installed:
	@test -x $(SAMVENV)/bin/python || $(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

$(SAMVENV)/.awscli-installed: $(SAMVENV)/.installed
	$(SAMVENV)/bin/python -m pip install --quiet awscli==$(AWS_CLI_VERSION)
	@touch $@

tools: $(SAMVENV)/.installed $(SAMVENV)/.awscli-installed

$(CHECKOVVENV)/.installed:
	@test -x $(CHECKOVVENV)/bin/python || $(PYTHON) -m venv $(CHECKOVVENV)
	$(CHECKOVVENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

# The console's browser test drives Debian's chromium (Playwright's own browser download does
# not work here); as root (CI, these machines) it is installed with apt-get.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "The console test needs Debian's chromium at $(CHROMIUM): sudo apt-get install chromium" >&2; exit 1; \
	fi

browser: $(CHROMIUM)

$(RUNTIMEVENV)/.installed: requirements-dev.txt
	@$(NEED_PYTHON313)
	@test -x $(RUNTIMEVENV)/bin/python || $(PYTHON313) -m venv $(RUNTIMEVENV)
	$(RUNTIMEVENV)/bin/python -m pip install --quiet $$(grep -E '^boto3==' requirements-dev.txt)
	@touch $@

build: $(SAMVENV)/.installed
	@$(NEED_PYTHON313)
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM) build --build-dir $(SAM_BUILD_DIR)

deploy: build tools
	$(SAM) deploy --template-file $(SAM_BUILD_DIR)/template.yaml $(DEPLOY_FLAGS)

# sam delete asks for the stack (or reads samconfig.toml) and confirms; DELETE_FLAGS passes more,
# e.g. DELETE_FLAGS="--stack-name imagegw --no-prompts". Retained resources: docs/deploy.md.
DELETE_FLAGS ?=
delete: tools
	$(SAM) delete $(DELETE_FLAGS)

demo: $(STAMP)
	$(PY) -m devstack demo

devstack: $(STAMP)
	$(PY) -m devstack up

# The docs site into site/; --strict (also in mkdocs.yml): a broken link or a missing page fails.
# Its diagrams are drawn by Mermaid, served with the site (mkdocs-material would fetch it from
# unpkg.com when a page loads: no diagram offline). The pinned tarball comes from the npm
# registry; its SHA-256 is checked before the one file the site needs is taken out of it.
MERMAID_VERSION := 11.4.1
MERMAID_SHA256 := ec7b61b391aaa24bf666fd20e48d0a626eeb4a95b95bc6b3016a122d7f0bc2af
MERMAID_JS := docs/assets/vendor/mermaid.min.js

$(MERMAID_JS):
	@mkdir -p $(dir $@) .cache/npm
	cd .cache/npm && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null
	echo "$(MERMAID_SHA256)  .cache/npm/mermaid-$(MERMAID_VERSION).tgz" | sha256sum -c --quiet
	tar -xzOf .cache/npm/mermaid-$(MERMAID_VERSION).tgz package/dist/mermaid.min.js > $@.tmp
	mv $@.tmp $@

docs: $(STAMP) $(MERMAID_JS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

template-check: $(STAMP) $(SAMVENV)/.installed $(CHECKOVVENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(CHECKOVVENV)/bin/checkov --file template.yaml --config-file .checkov.yaml
	$(SAM) validate --lint --template template.yaml --region us-east-1

# The built-layer tests (tests/template) run sam build and import with .venv-runtime; the
# README tests (tests/e2e) run the README's aws commands.
unit: $(STAMP) $(SAMVENV)/.installed $(RUNTIMEVENV)/.installed
	$(PY) -m pytest tests -m "not e2e"

e2e: $(STAMP) tools browser
	$(PY) -m pytest tests -m e2e

# The service layer must be covered by the fast fake-based unit tests alone (tests/unit),
# so tests/unit runs on its own with a coverage gate, before the rest of the suite in its lane.
COVERAGE_GATE := --cov=image_gateway.service --cov-report=term --cov-fail-under=90

# make test runs in two lanes side by side on the two cores; a failure in either fails make test
# (each step's output is printed whole when it ends). The e2e tests, one devstack using ~1.1
# cores for ~12 minutes, start as soon as .venv, the SAM/AWS CLIs and chromium are installed.
# The other lane runs everything else one step at a time in the ~45% of the machine the e2e
# run leaves idle: the other installs, lint, mypy, the template checks, the docs build, the
# unit tests with their coverage gate (test-before-suite), then the rest of the suite
# (contract, devstack, template, integration, docs: ~150 s). A failing check stops that lane;
# make then waits for the e2e run before it fails.
test:
	@$(MAKE) --no-print-directory --jobs=2 --output-sync=target suite-e2e suite-rest

# Each suite run prints its 25 slowest tests. MAKEFLAGS is cleared for pytest: the make
# commands tests run (the README's `make devstack`, `make build`) run as from a shell, not as
# part of this parallel, output-synced make.
SUITE := MAKEFLAGS= $(PY) -m pytest -p no:cacheprovider --durations=25
# It reads the default .devstack/stack.json, which the e2e session's stack and the README test
# write: it runs in the e2e run, first, before that stack starts (as in one pytest run).
STATE_FILE_TEST := tests/devstack/test_state_file.py

# The e2e tests marked own_devstack (the IAM ones: a devstack process each, ~30 s; the API fuzzers
# and the batches of tests/e2e/own_stack/, ~175 s and ~110 s: a devstack of the module's own)
# use nothing of the session's stack: they run in the other lane, last.
suite-e2e: $(STAMP) tools browser
	$(SUITE) $(STATE_FILE_TEST) tests/e2e -m "not own_devstack"

suite-rest: test-before-suite
	$(SUITE) tests --ignore=tests/unit --ignore=$(STATE_FILE_TEST) -m "not e2e or own_devstack"

# Everything but the e2e tests needs these first; unit-gate first: the longest step (~50 s).
test-before-suite: unit-gate lint typecheck template-check docs tools browser \
		$(RUNTIMEVENV)/.installed

unit-gate: $(STAMP)
	$(PY) -m pytest tests/unit -p no:cacheprovider $(COVERAGE_GATE)

# Least privilege, the other way round: each permission of each function's role, taken out in
# turn on one IAM-enforced devstack, fails the scenario mapped to it (devstack/iam_mutations.py).
iam-check: $(STAMP)
	$(PY) -m devstack.iam_mutations

clean:
	rm -rf $(VENV) $(SAMVENV) $(RUNTIMEVENV) $(CHECKOVVENV) .aws-sam .devstack site .cache docs/assets/vendor .pytest_cache .mypy_cache .ruff_cache \
		test-artifacts

# The cold-start figure imports what `make build` makes (bench/artefact.py runs it).
bench: $(STAMP) $(SAMVENV)/.installed $(RUNTIMEVENV)/.installed
	$(PY) -m bench

# The adapters' botocore models, cut to the operations they call (image_gateway.adapters.boto):
# run after changing OPERATIONS or the boto3 pin (a test says when they are out of date).
botocore-models: $(STAMP)
	$(PY) -m image_gateway.adapters.trimmed_models

schema: $(STAMP)
	$(PY) -c "import json; from image_gateway.models.events import event_detail_schema as s; \
	open('events/schema/image-task-event.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
	$(PY) -c "import json; from image_gateway.models.views import webhook_payload_schema as s; \
	open('events/schema/image-task-webhook.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
	$(PY) -c "import json; from image_gateway.batches.events import batch_event_schema as s; \
	open('events/schema/image-batch-event.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
	$(PY) -c "import json; from image_gateway.webhooks.models import webhook_failed_schema as s; \
	open('events/schema/image-task-webhook-failed.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
	$(PY) -c "import json; from image_gateway.models.circuits import circuit_changed_schema as s; \
	open('events/schema/provider-circuit-changed.v1.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
