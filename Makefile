# `make demo` and `make test` work on a fresh machine: each bootstraps .venv first.
# The interpreter .venv is built from: the distribution's optimised build when it is
# >= 3.11 with venv, else python3.11 / python3 on PATH (scripts/pick-python.sh says why).
PYTHON ?= $(shell ./scripts/pick-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Elasticsearch API type checks need node_modules (typescript + @elastic/elasticsearch).
NODE_STAMP := typecheck/node_modules/.installed
TYPECHECK_DEPS := $(if $(wildcard typecheck/package.json),$(NODE_STAMP))

.PHONY: demo test test-stack bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py mlmon_logging/_speedups.c
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "mlmon needs Python >= 3.11 (found $(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[jobs,dev]'
	touch $@

$(NODE_STAMP): typecheck/package.json typecheck/package-lock.json
	npm ci --prefix typecheck --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(VENV)/bin/mlmon demo

# The floors (import-linter contracts in .importlinter), the type check of both packages
# (mypy, settings in pyproject.toml), then the test suite.
test: $(STAMP) $(TYPECHECK_DEPS)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy
	$(PY) -m pytest

# Golden files through real Logstash into real Elasticsearch (needs a Docker engine).
test-stack: $(STAMP)
	./scripts/test-stack.sh

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) typecheck/node_modules .pytest_cache out
