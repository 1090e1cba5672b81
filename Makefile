# The one place that knows how to build, check and run this project. README and .ci/run both use it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= auto
# core/, shell/, adapters_builtin/ and facade/ are mapped under finetuning_scheduler by setuptools; the "strict"
# editable mode builds a link tree in build/ that mypy and import-linter can follow.
INSTALL := $(BIN)/pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=strict
# The link tree holds one link per source file: a file added or removed needs a relink (no dependencies, ~2 s).
RELINK := $(BIN)/pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict

# Stamps: the full install reruns only when pyproject.toml or constraints.txt change; the relink only when the set
# of source files changes (the list below is rewritten only when it differs) or build/ is gone.
INSTALLED := $(VENV)/.installed
LINKED := $(VENV)/.linked
SOURCE_LIST := $(VENV)/.source-files
$(shell mkdir -p $(VENV) && find facade core shell adapters_builtin \( -name '*.py' -o -name py.typed \) | sort \
	> $(SOURCE_LIST).now && (cmp -s $(SOURCE_LIST).now $(SOURCE_LIST) || mv $(SOURCE_LIST).now $(SOURCE_LIST)))
$(shell test -d build || rm -f $(LINKED))

.PHONY: install test test-fast lint typecheck docs format demo bench ci clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml constraints.txt | $(BIN)/python
	$(INSTALL)
	touch $(LINKED) $@

$(LINKED): $(SOURCE_LIST) | $(INSTALLED)
	$(RELINK)
	touch $@

install: $(INSTALLED) $(LINKED)

# The whole suite, on every core (what .ci/run runs).
test: install
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# The inner loop: no slow or multi-process runs, 10 Hypothesis examples per property, stop at the first failure.
test-fast: install
	FTS_HYPOTHESIS_PROFILE=dev $(BIN)/pytest -n $(PYTEST_WORKERS) -q -x -m "not slow and not distributed"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) typecheck
	# import-linter runs outside the checkout so it analyses the installed package, not the source folders.
	cd $(VENV) && bin/lint-imports --config $(CURDIR)/pyproject.toml

# mypy --strict (pyproject.toml) on the whole package, through the installed link tree.
typecheck: install
	cd $(VENV) && bin/mypy -p finetuning_scheduler

# The documentation site (mkdocs-material + mkdocstrings), built in strict mode: a broken link, a missing page or an
# unresolvable API reference fails it. Output: build/site (open build/site/index.html).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

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
	$(MAKE) docs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
