# Every target bootstraps .venv from nothing, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports pytest bench runbook dist clean mutation

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# Bytecode for the project's own modules: with PYTHONDONTWRITEBYTECODE set (as on the dev
	# machines) nothing of it is ever cached, and every process (each simulation, each test
	# server) compiled it again, about 0.35 s. Python checks each file's mtime, so an edited
	# module is recompiled, never read stale.
	$(BIN)/python -m compileall -q slackbot handlers
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/triagebot demo

lint: $(STAMP)
	$(BIN)/ruff check slackbot handlers tests bench
	$(BIN)/ruff format --check slackbot handlers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The dependency rules (pyproject.toml [tool.importlinter]): layers point inwards, no cycles.
imports: $(STAMP)
	$(BIN)/lint-imports

# The real JUnit producers the tests run (vitest, jest + jest-junit), pinned by the lock file.
JS_PRODUCERS := tests/producers/js
JS_STAMP := $(JS_PRODUCERS)/node_modules/.installed

$(JS_STAMP): $(JS_PRODUCERS)/package.json $(JS_PRODUCERS)/package-lock.json
	cd $(JS_PRODUCERS) && npm ci --no-audit --no-fund
	touch $(JS_STAMP)

# Two workers (CI has two cores); --dist loadfile keeps a test file on one worker, so the servers,
# browsers and Alertmanagers a module shares start once, not once per worker.
PYTEST_WORKERS ?= 2
pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck imports pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

# Planted bugs the founder-absence simulation must catch (slackbot/simulation/mutants.py); about
# 15 min on 2 cores, so not part of `make test` (tests/simulation runs two of them).
mutation: $(STAMP)
	$(BIN)/triagebot simulate --mutants --days 3 --report docs/mutation.md

runbook: $(STAMP)
	$(BIN)/triagebot runbook render

# A wheel with everything the bot runs (the playbooks and manifest.yml included, as package data):
# `pip install dist/triagebot-*.whl` anywhere, or the Dockerfile's build stage does the same.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .
	@ls dist/*.whl

# The Dockerfile built and run for real (deploy/image-test): a Docker engine and a Debian base image
# made with debootstrap (both installed when missing, as root; no registry needed), the container
# run with a volume against the local Slack emulator. About 4-5 min the first time, 1.5 min after.
.PHONY: image-test
image-test: $(STAMP)
	deploy/image-test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache dist build $(JS_PRODUCERS)/node_modules
