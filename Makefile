# Noriba: two commands for a fresh machine with Python 3.11+ — `make demo` and `make test`.
SHELL := /bin/bash
export UV_COMPILE_BYTECODE := 1
PYTHON ?= python3
UV ?= $(PYTHON) -m uv

.PHONY: demo test bench uv sync

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv || $(PYTHON) -m pip install --quiet --user uv

# Install the locked dependencies and build the demo region offline.
demo: uv
	$(UV) sync --frozen --no-dev
	$(UV) run --frozen --no-dev noriba demo

# Install the locked dependencies (with the test and Airflow groups) and run the whole test suite.
test: uv
	$(UV) sync --frozen
	$(UV) run --frozen pytest -n 2 --dist loadfile

bench: uv
	$(UV) sync --frozen
	$(UV) run --frozen python bench/bench_ingest.py
	$(UV) run --frozen python bench/bench_trips.py
