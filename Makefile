# Every routine act of batchwire. Only Python 3.11+ and make are assumed: the first target
# that needs tools creates .venv from requirements-dev.txt (and refreshes it when that changes).

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)

FN ?= SubmitterFunction
EVENT ?= events/schedule.json
PARAMS ?=
STACK ?=

.PHONY: help demo test lint format typecheck validate rehearse local-stack pytest fuzz faults invoke build build-check bench docs clean

help:
	@echo "make demo       run the whole flow locally (moto server + local Slack stand-in)"
	@echo "make test       lint, type-check, validate and rehearse the template, run every test"
	@echo "make rehearse   deploy the template as CloudFormation receives it into a local engine"
	@echo "make fuzz       feed every handler 10,000 generated events; counts per outcome"
	@echo "make faults     fail each AWS call of each function once; write docs/faults.md"
	@echo "make local-stack [PARAMS=\"Name=Value ...\"]"
	@echo "                deploy the template into a local engine and serve it until Ctrl-C"
	@echo "make invoke FN=<LogicalId> EVENT=<file> [STACK=<deployed stack>]"
	@echo "                run one deployed function in-process (default: the local stack)"
	@echo "make build      sam build and check its artifacts (needs python3.13 on PATH)"
	@echo "make bench      the built handlers against the naive baseline (make build first)"
	@echo "make docs       regenerate docs/parameters.md from template.yaml (a test fails when stale)"

$(STAMP): requirements-dev.txt layer/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "batchwire needs Python 3.11 or newer; $(PYTHON) is older (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing development tools into $(VENV) (first run takes about a minute)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

test: lint typecheck validate rehearse pytest build-check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(STAMP)
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(BIN)/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download

# The template after the SAM transform, linted, scanned and created as a stack in moto's
# CloudFormation, both variants, its deployed wiring checked (devtools/rehearse.py); then
# each function run with only its deployed role's actions (devtools/permissions.py).
rehearse: $(STAMP)
	$(BIN)/python -m devtools.rehearse
	$(BIN)/python -m devtools.permissions

pytest: $(STAMP)
	$(BIN)/pytest -n 2

# make test feeds each handler 1,000 generated events (tests/fuzz, docs/fuzzing.md); this
# feeds 10,000 and ends with the events per handler and outcome.
fuzz: $(STAMP)
	BATCHWIRE_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/fuzz -m fuzz -n 2

# Each AWS call and Slack post of each function failed once, then the event delivered again
# (devtools/faults); make test runs the same matrix and fails when docs/faults.md is stale.
faults: $(STAMP)
	$(BIN)/python -m devtools.faults

local-stack: $(STAMP)
	@$(BIN)/python -m devtools.local_stack --params "$(PARAMS)"

invoke: $(STAMP)
	@$(BIN)/python -m devtools.invoke "$(FN)" "$(EVENT)" --stack "$(STACK)"

# sam build needs the runtime's interpreter; CI builds when one is on PATH and says so when not.
# The build is then checked as Lambda will get it (layer/artifacts.py check): no AWS SDK in
# any artifact, python3.13 unchecked-hash bytecode for every source, each artifact under its
# size limit; and the tests of tests/unit/test_build_artifacts.py run on that build.
build-check: $(STAMP)
	@if python3.13 --version >/dev/null 2>&1; then \
		echo "sam build with $$(python3.13 --version)"; \
		$(BIN)/sam build --build-dir .aws-sam/check-build --cache-dir .aws-sam/check-cache && \
		$(BIN)/python layer/artifacts.py check .aws-sam/check-build && \
		BATCHWIRE_BUILD_DIR=.aws-sam/check-build $(BIN)/pytest -q tests/unit/test_build_artifacts.py; \
	else \
		echo "SKIPPED sam build: no python3.13 on PATH (the python3.13 runtime needs it; see make build)"; \
	fi

build: $(STAMP)
	@command -v python3.13 >/dev/null 2>&1 && python3.13 --version >/dev/null 2>&1 || \
		{ echo "make build: sam build needs python3.13 on PATH for the python3.13 runtime (for example: pyenv shell 3.13.0)"; exit 1; }
	$(BIN)/sam build
	$(BIN)/python layer/artifacts.py check .aws-sam/build

# The handlers as built (make build), deployed as Lambda gets them, on python3.13.
bench: build
	$(BIN)/python -m bench

# docs/parameters.md from template.yaml; tests/unit/test_parameter_reference.py fails when stale.
docs: $(STAMP)
	$(BIN)/python -m devtools.parameter_reference

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
