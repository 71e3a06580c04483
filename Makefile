# make demo: venv, default sweep, ingest, dashboard + collector watching. Ctrl-C stops both.
# make test: venv (if missing) and the whole test suite; make quick: the fast tier (not slow, not browser).
# Both on pytest-xdist workers, one more than the logical cores (at most 4): the suite waits much of its time (Ray
# starting, load levels in real time, the browser), and on 2 cores 2 workers kept them 56% busy (user + system time
# over twice the wall time) where 3 finished 6 min 31 s against 7 min 16-42 s. A test file (or the demo-and-Ray
# group) to a worker at a time, the longest first (tests/conftest.py: LONGEST_FIRST; --no-loadscope-reorder keeps
# that order).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n + 1 < 4 ? n + 1 : 4 )))
XDIST  := -n $(WORKERS) --dist loadfile --no-loadscope-reorder
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
export WAREHOUSE_DB ?= data/warehouse.duckdb
export SPOOL_DIR    ?= data/spool
export OUTPUT_DIR   ?= data/images

.PHONY: demo test quick venv dashboard clean bench reference

venv: $(STAMP)

# The pins (requirements.txt), then the project itself in editable mode (pyproject.toml): no path edits.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) -m generator demo
	$(PY) -m collector ingest
	@$(MAKE) --no-print-directory dashboard

# The dashboard on http://localhost:8501 with the collector watching the spool beside it.
dashboard: $(STAMP)
	@echo "Dashboard: http://localhost:8501   (Ctrl-C stops the dashboard and the collector)"
	@$(PY) -m collector watch & watcher=$$!; \
	trap 'kill $$watcher 2>/dev/null; wait $$watcher 2>/dev/null' EXIT INT TERM; \
	$(PY) -m streamlit run dashboard.py --server.address 127.0.0.1 --server.port 8501

# The GPU reference (examples/gpu-h200/: spool files of an H200) in a warehouse of its own, and the dashboard on it.
# The spool is copied first: the collector moves what it ingests into done/.
REFERENCE := data/gpu-h200
reference: $(STAMP)
	rm -rf $(REFERENCE) && mkdir -p $(REFERENCE) && cp -r examples/gpu-h200/spool $(REFERENCE)/spool
	$(PY) -m collector ingest --spool $(REFERENCE)/spool --db $(REFERENCE)/warehouse.duckdb
	@$(MAKE) --no-print-directory dashboard WAREHOUSE_DB=$(REFERENCE)/warehouse.duckdb SPOOL_DIR=$(REFERENCE)/spool \
	  OUTPUT_DIR=$(REFERENCE)/images

test: $(STAMP)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	$(PY) -m pytest $(XDIST)

quick: $(STAMP)
	$(PY) -m pytest $(XDIST) -m "not slow and not browser"

clean:
	rm -rf data test-output

# Benchmarks: ratios measured side by side in one run (no assertions on time in tests).
bench: $(STAMP)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the page render bench"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	$(PY) -m benchmarks.bench_generator
	$(PY) -m benchmarks.bench_warehouse
	$(PY) -m benchmarks.bench_pages
	$(PY) -m benchmarks.bench_reproducibility
	$(PY) -m benchmarks.bench_load
	$(PY) -m benchmarks.bench_http
	$(PY) -m benchmarks.bench_ray
