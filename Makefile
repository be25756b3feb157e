# Tally: `make demo` runs everything on embedded defaults; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest system-deps test-deps install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

# The tests also need Debian's chromium (the dashboard's browser test) and a CJK font.
test-deps:
	bash scripts/system-deps.sh --browser

demo: install system-deps
	$(BIN)/tally demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

test: lint typecheck pytest

bench: install system-deps
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
