# Everything a fresh machine needs comes from here: python3 and make are the only assumptions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean checkov browser build-CorrelatorFunction build-RunnerFunction build-SlackActionsFunction

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python infra/demo.py

# The suite runs on every core (pytest-xdist); a worker that runs dry takes tests queued for another (worksteal),
# so the long end-to-end tests do not leave a core idle.
test: lint checkov browser
	$(BIN)/python -m pytest -q -n auto --dist worksteal

# The report tests open pages in Debian's Chromium; CI runs as root on Debian, so it installs it once, here.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null; then apt-get update -q && apt-get install -y -q chromium; \
	else echo "no /usr/bin/chromium and no apt-get: the browser tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check cordon correlators responders infra bench tests
	$(BIN)/ruff format --check cordon correlators responders infra bench tests
	$(BIN)/mypy cordon correlators responders infra bench

# checkov pins an old networkx, so it lives in its own venv. Skips are justified inline in the templates.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		--file template.yaml --file infra/member-account.yaml

# `sam build` (BuildMethod: makefile) calls these with ARTIFACTS_DIR: the project wheel with its package data
# (built-in rules and playbooks) and the `aws` extra, for Lambda's python3.12 on x86_64.
LAMBDA_PIP := --platform manylinux2014_x86_64 --python-version 3.12 --implementation cp --only-binary=:all:

build-CorrelatorFunction build-RunnerFunction build-SlackActionsFunction:
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(ARTIFACTS_DIR)/.wheel .
	$(PYTHON) -m pip install --quiet $(LAMBDA_PIP) --target $(ARTIFACTS_DIR) \
		"$$(ls $(ARTIFACTS_DIR)/.wheel/cordon-*.whl)[aws]"
	rm -rf $(ARTIFACTS_DIR)/.wheel

# `make bench` (not part of `make test`): issue 8's targets measured in one run, see docs/benchmarks.md. The eql
# side converts the SigmaHQ rules with pySigma's EQL backend, which needs pySigma < 2 (Cordon needs >= 2), so the
# conversion runs in a venv of its own, like checkov.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_SIGMA_VENV := .venv-bench-sigma
BENCH_SIGMA_STAMP := $(BENCH_SIGMA_VENV)/.installed
BENCH_EQL_RULES := bench/out/sigmahq_eql.json

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

$(BENCH_SIGMA_STAMP):
	test -x $(BENCH_SIGMA_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_SIGMA_VENV)
	$(BENCH_SIGMA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_SIGMA_VENV)/bin/python -m pip install --quiet 'pysigma-backend-elasticsearch==2.1.1'
	touch $(BENCH_SIGMA_STAMP)

$(BENCH_EQL_RULES): $(BENCH_SIGMA_STAMP) bench/sigma_to_eql.py $(wildcard bench/rules/sigmahq-cloudtrail/*.yml)
	$(BENCH_SIGMA_VENV)/bin/python bench/sigma_to_eql.py bench/rules/sigmahq-cloudtrail $@

bench: $(BENCH_STAMP) $(BENCH_EQL_RULES)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
