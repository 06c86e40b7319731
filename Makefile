# Noriba: two commands for a fresh machine with Python 3.11+ — `make demo` and `make test`.
# Both use the one locked environment (all dependency groups), the same one a plain `uv run` uses,
# so neither installs or removes packages after the other. Bytecode is compiled once, when
# `uv sync` installs (UV_COMPILE_BYTECODE=1), not on every `uv run`.
SHELL := /bin/bash
PYTHON ?= python3
UV ?= $(PYTHON) -m uv
SYNC = UV_COMPILE_BYTECODE=1 $(UV) sync --frozen --quiet
RUN = $(UV) run --frozen --no-sync

.PHONY: demo test bench uv sync

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv || $(PYTHON) -m pip install --quiet --user uv

sync: uv
	$(SYNC)

# Install the locked dependencies and build the demo region offline.
demo: sync
	$(RUN) noriba demo

# Install the locked dependencies and run the whole test suite.
test: sync
	$(RUN) pytest -n 2 --dist loadfile --max-worker-restart=0

bench: sync
	$(RUN) python bench/bench_ingest.py
	$(RUN) python bench/bench_trips.py
