# The one place that knows how to build, check and run this project. README and .ci/run both use it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# core/, shell/ and adapters_builtin/ are mapped under finetuning_scheduler by setuptools; the "strict"
# editable mode builds a link tree that mypy and import-linter can follow.
INSTALL := $(BIN)/pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=strict

.PHONY: install test lint format demo bench ci clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(INSTALL)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p finetuning_scheduler.core
	# import-linter runs outside the checkout so it analyses the installed package, not the source folder.
	cd $(VENV) && bin/lint-imports --config $(CURDIR)/pyproject.toml

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: install
	$(BIN)/python -m finetuning_scheduler demo

bench: install
	$(BIN)/python -m benchmarks

ci:
	rm -rf $(VENV) build
	$(MAKE) test
	$(MAKE) lint

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
