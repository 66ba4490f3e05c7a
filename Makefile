# The verbs people type. Everything installs from this project's own files.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install test lint bench demo docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check erelease tests bench
	$(VENV)/bin/ruff format --check erelease tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m bench

demo: $(STAMP)
	$(PY) -m erelease.devtools.demo

docs: $(STAMP)
	$(PY) -m erelease.devtools.clidoc > docs/cli.md

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
