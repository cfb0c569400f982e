# Both entry points bootstrap .venv from nothing but python3 (>= 3.11) and make.
# The venv is rebuilt only when pyproject.toml changes, so second runs are fast.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.plugport-installed

.PHONY: demo example-wheels cluster haproxy test lint typecheck unit coverage browser docs docs-serve clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Plugport needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[server,postgres,s3,docs,dev]'
	@touch $(STAMP)

demo: $(STAMP) example-wheels
	@$(BIN)/python scripts/demo.py

# The wheels the examples' locks name (only examples/email ships a library today), fetched into
# the wheel cache (~/.cache/plugport/wheels) so `plugport pack` can put them in the archives:
# make demo publishes the examples and tests/test_examples.py packs them. `plugport lock` keeps
# the locked versions and checks each wheel's sha256 (a lock that is current stays as it is);
# a cached wheel costs pip one resolution, about a second.
example-wheels: $(STAMP)
	@for lock in examples/*/plugport.lock; do \
	  $(BIN)/plugport lock "$$(dirname "$$lock")" >/dev/null || \
	    { echo "could not fetch the wheels $$lock names (pip needs a package index)"; exit 1; }; \
	done

# A local cluster of registry nodes behind haproxy (scripts/cluster.py; docs/operators-cluster.md):
# CLUSTER_ARGS="--nodes 3", "--check" (start, publish, fetch through each, stop), "--port 0"...
CLUSTER_ARGS ?=

cluster: $(STAMP) haproxy
	@$(BIN)/python scripts/cluster.py $(CLUSTER_ARGS)

# haproxy balances the local cluster (and its benchmark and test). Where it is missing and we may
# install packages (root with apt-get), install Debian's; otherwise scripts/cluster.py says so.
haproxy:
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing Debian's haproxy for the local registry cluster"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy) >/dev/null || \
	        echo "could not install haproxy; the cluster needs it (install Debian's haproxy)"; \
	    else echo "haproxy not found; the cluster needs it (install Debian's haproxy)"; fi; }

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks examples
	$(BIN)/ruff format --check src tests scripts benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Three processes on two cores: most tests wait on real servers, workers and subprocesses
# (two processes kept the cores 64% busy; three took the suite from 10:39 to 9:01 with the
# PostgreSQL and Redis tests). --dist loadfile keeps a module's tests (and its module-scoped
# servers) in one process.
PYTEST_WORKERS ?= 3

unit: $(STAMP) browser haproxy example-wheels
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -q

# The same run, measuring which lines of src/ the test processes execute, with the floor in
# pyproject.toml. Not part of `make test`: the tracer makes in-process tests up to 70% slower
# in CPU (with the PostgreSQL and Redis tests, 11:30 against 10:39 on 2 cores, two processes).
coverage: $(STAMP) browser haproxy example-wheels
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term -q

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here). Where
# it is missing and we may install packages (root with apt-get), install it; otherwise those
# tests skip and say why.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing Debian's chromium for the browser tests"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || \
	        echo "could not install chromium; the browser tests will be skipped"; \
	    else echo "chromium not found; the browser tests will be skipped (install Debian's chromium)"; fi; }

# The docs site (mkdocs.yml, docs/). `make test` checks the same strict build in
# tests/test_docs.py; the generated pages come from docs/_hooks.py in both.
DOCS_PORT ?= 8001

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

clean:
	rm -rf $(VENV) build dist site .pytest_cache .mypy_cache .ruff_cache .coverage
