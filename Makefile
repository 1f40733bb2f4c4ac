# Two commands matter on a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The example third-party plugin: its own package, installed and tested as a plugin author's.
EXAMPLE := examples/sgtm-slack
EXAMPLE_STAMP := $(VENV)/.example-installed
CONFIG ?= config/example.yaml
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck fmt bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Installed beside sgtm like any third-party plugin (found through its entry point, never imported
# by sgtm itself); editable, so its tests always run the code in the tree.
$(EXAMPLE_STAMP): $(STAMP) $(EXAMPLE)/pyproject.toml
	$(BIN)/pip install --quiet --no-deps -e $(EXAMPLE)
	touch $(EXAMPLE_STAMP)

run: $(STAMP)
	$(BIN)/sgtm serve -c $(CONFIG) --host $(HOST) --port $(PORT)

test: $(STAMP) $(EXAMPLE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q
	cd $(EXAMPLE) && $(CURDIR)/$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
