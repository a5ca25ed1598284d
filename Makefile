# Quick start: `make run` serves the example app; `make test` runs the whole test suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint clean

$(BIN)/chirp: pyproject.toml
	$(PY) -m venv $(VENV)
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
	rm -rf $(VENV) build *.egg-info src/*.egg-info
