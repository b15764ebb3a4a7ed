# TrialWatch — the single entry point. `make demo` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
STACK := $(PY) -m trialwatch.devstack

.PHONY: install up down reset status demo test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@# An editable install compiles none of the project's modules; where PYTHONDONTWRITEBYTECODE is set
	@# (as on the project's machines) every command would compile ~70 of them again at each start.
	@$(PY) -m compileall -q services shared trialwatch
	@touch $(STAMP)
	@echo "installed: $(VENV)/bin/trialwatch"

up: install
	@$(STACK) up

down: install
	@$(STACK) down

reset: install
	@$(STACK) reset

status: install
	@$(STACK) status

# `make up` if needed, then the default scenario live, its summary and out/demo-summary.json (trialwatch/demo.py).
demo: install
	@$(VENV)/bin/trialwatch demo

# The whole suite against its own Kafka and PostgreSQL (separate ports and data from `make up`),
# torn down afterwards whatever the outcome.
test: install
	@$(STACK) --stack test up --infra-only || { $(STACK) --stack test down; exit 1; }; \
	$(PY) -m pytest; rc=$$?; \
	$(STACK) --stack test down; \
	exit $$rc

# Domain tests only: no broker, no database.
test-fast: install
	@$(PY) -m pytest -m "not integration"

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy shared services trialwatch

format: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

# Replay benchmark (issue #3), then the live pipeline benchmark against the test stack (issue #4).
bench: install
	@$(PY) -m bench.run
	@$(STACK) --stack test up --infra-only
	@$(PY) -m bench.pipeline

clean: down
	rm -rf $(VENV) out
