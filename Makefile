# One venv, installed from the lock file with uv, then the project's commands.
# `make test` is what CI runs (.ci/run); `make demo` is the main job.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
PORT ?= 8080

.PHONY: install test lint typecheck pytest demo airflow bench lock clean browser reliability e2e-celery

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

lock:
	$(BIN)/uv pip compile pyproject.toml --extra test --extra postgres --extra celery \
		--python-version 3.11 --quiet -o requirements.lock

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# Two pytest workers, a test file each at a time: the e2e tests mostly wait on a real scheduler and
# the clock, so the suite overlaps them with the CPU-bound integration tests (pytest-xdist).
pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

# Debian's chromium for the browser e2e test (tests/e2e/test_airflow_ui_in_browser.py); Playwright
# drives it and never downloads a browser of its own. Needs root or sudo; .ci/run calls it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium fonts-liberation; }
	@/usr/bin/chromium --version 2>/dev/null

# The fault and kill tests at full size (500 invoices, 500 payments; make test runs them with 80),
# their figures (records, lost, duplicated per case) written to RELIABILITY.md. ~15 min.
RELIABILITY_FIGURES := .reliability-figures.jsonl
reliability: install
	rm -f $(RELIABILITY_FIGURES)
	MLCONN_FAULT_INVOICES=500 MLCONN_RELIABILITY_FIGURES=$(CURDIR)/$(RELIABILITY_FIGURES) \
		$(BIN)/pytest -q tests/reliability tests/integration/test_invoices_faults.py \
		tests/integration/test_payments_faults.py tests/unit/test_sync_uncertain.py
	$(BIN)/python -m tests.support.reliability $(RELIABILITY_FIGURES) RELIABILITY.md

# docker-compose.airflow.yml run as processes (CeleryExecutor, two workers, PostgreSQL and Redis on
# 127.0.0.1): 5,000 customers, one worker against two, a worker killed mid-load. ~6 min; not in make test.
e2e-celery: install
	MLCONN_CELERY_STACK=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/e2e/test_celery_stack.py

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

demo: install
	$(BIN)/python scripts/demo.py

airflow: install
	$(BIN)/python scripts/run_airflow.py --port $(PORT)
