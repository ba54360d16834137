# Every target bootstraps .venv from nothing, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench runbook clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/triagebot demo

lint: $(STAMP)
	$(BIN)/ruff check slackbot handlers tests bench
	$(BIN)/ruff format --check slackbot handlers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

runbook: $(STAMP)
	$(BIN)/triagebot runbook render

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
