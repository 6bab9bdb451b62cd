# Everything a fresh machine needs comes from here: python3 and make are the only assumptions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python infra/demo.py

test: lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check cordon correlators responders infra bench tests
	$(BIN)/ruff format --check cordon correlators responders infra bench tests
	$(BIN)/mypy cordon correlators responders infra bench

bench: $(STAMP)
	$(BIN)/python bench/bench_replay.py 50000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
