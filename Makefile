# Quick start: `make run` serves the example app; `make test` runs the whole test suite.
# Another Python: `make test PY=python3.14 VENV=.venv-3.14` (MKVENV if its venv needs a helper).
PY ?= python3
VENV ?= .venv
MKVENV ?= $(PY) -m venv
BIN := $(VENV)/bin

.PHONY: install run test lint clean

$(BIN)/chirp: pyproject.toml
	$(MKVENV) $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/chirp

run: install
	cd examples && ../$(BIN)/chirp check hello:app
	cd examples && ../$(BIN)/chirp run hello:app --host 127.0.0.1 --port 8000

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf .venv .venv-* build *.egg-info src/*.egg-info
