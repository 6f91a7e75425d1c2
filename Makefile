# Build/test entry points. `make test` is THE test command (README, .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv test lint fmt dev bench bench-api bench-scaleout bench-flashsale bench-search bytecode clean lock pg-bin browser-bin screenshots

venv: $(STAMP)

# Re-runs only when the declared deps or the lock change.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/: $(STAMP)

# Regenerate requirements.lock from a clean install of .[dev] (run after editing pyproject deps).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# Full transitive pins for a clean install of .[dev] (Python 3.11)."; \
	  echo "# Regenerate with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > requirements.lock
	rm -rf .lock-venv

# Tests start throwaway PostgreSQL servers: make sure the server binaries exist.
pg-bin:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "PostgreSQL server binaries not found; installing the Debian package"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y postgresql; \
	fi

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`: it
# downloads a browser and fails offline); CJK fonts so Chinese pages render as text. (No
# `grep -q` after fc-list: under pipefail its early exit fails the pipeline with SIGPIPE.)
browser-bin:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list : family 2>/dev/null | grep -i 'noto.*cjk' >/dev/null; then \
	  echo "Chromium or CJK fonts not found; installing the Debian packages"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium fonts-noto-cjk; \
	fi

test: venv pg-bin browser-bin
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The workflow sandbox re-imports each workflow's module for every new run; without bytecode
# caches (PYTHONDONTWRITEBYTECODE, a fresh checkout) that means compiling its source each time:
# about 15 % of the worker's CPU in the benchmark. Compile once up front.
bytecode: venv
	$(BIN)/python -m compileall -q workflows domain activities db > /dev/null

dev: venv bytecode
	$(BIN)/orders dev

bench: venv bytecode
	$(BIN)/python -m bench.lifecycle

# Lifecycles through the HTTP API (worker and API processes, PostgreSQL) against the empty-workflow
# rate of the same server, latency per step at 16 in flight, shedding at 2x that load (bench/README.md).
bench-api: venv bytecode pg-bin
	$(BIN)/python -m bench.api_load

# 2 workers + 2 APIs (processes) on one dev server and PostgreSQL: 1+1 vs 2+2 throughput, then a
# SIGKILLed worker and a restarted API under load, every invariant checked (bench/README.md).
bench-scaleout: venv bytecode pg-bin
	$(BIN)/python -m bench.scaleout

# 10,000 unpaid orders through the HTTP API, all left to expire (deadlines falling while they
# arrive): submit rate, auto-cancel lateness p50/p99/max, drain, RSS of worker/API/server.
bench-flashsale: venv bytecode pg-bin
	$(BIN)/python -m bench.flashsale

# Admin search and CSV export on 1,000,000 supplier orders in a throwaway PostgreSQL: page p50/p99
# per filter (first and 50 pages deep), export rows/s and peak RSS (bench/README.md).
bench-search: venv pg-bin
	$(BIN)/python -m bench.search

# Refresh the README's screenshots: every page at 1280x800 and 390x844, from the browser tests.
screenshots: venv browser-bin
	rm -rf docs/screenshots
	ORDERS_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -q tests/web/test_pages.py

clean:
	rm -rf $(VENV) .lock-venv .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
