# Two commands set everything up: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON := $(VENV)/bin/python
export PZ_DATA_DIR    ?= $(CURDIR)/data
export PZ_REPORTS_DIR ?= $(CURDIR)/reports
export PZ_CONFIG      ?= $(CURDIR)/config/personalization.yml
DS ?= $(shell sed -n 's/^ *end_date: *\([0-9-]*\).*/\1/p' $(PZ_CONFIG) | head -1)

.PHONY: help venv browser data demo run backfill airflow mlflow test lint bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# The virtualenv is rebuilt whenever requirements.txt changes. uv installs in seconds; when uv
# cannot be had, pip does the same job more slowly.
$(VENV)/.installed: requirements.txt
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@if $(PYTHON) -m pip install --quiet uv 2>/dev/null; then \
		$(VENV)/bin/uv pip install --quiet --python $(PYTHON) -r requirements.txt; \
	else \
		echo "uv unavailable: installing with pip"; \
		$(PYTHON) -m pip install --quiet -r requirements.txt; \
	fi
	@touch $@

venv: $(VENV)/.installed  ## create or update .venv with the pinned requirements

data: venv  ## generate the demo landing data (config/personalization.yml, section demo)
	$(PYTHON) -m ml.synthetic

run: venv  ## run the nightly DAG for one logical date, in-process: make run DS=YYYY-MM-DD
	$(PYTHON) -m ml.orchestration run --ds $(DS) --summary

backfill: venv  ## run the DAG for a range, in order, in-process: make backfill START=... END=...
	$(PYTHON) -m ml.orchestration backfill --start $(START) --end $(END) --summary

demo: data  ## set up, generate the demo data, run the DAG for its last days, print what was produced
	$(PYTHON) -m ml.orchestration demo --summary

airflow: venv  ## airflow standalone on http://localhost:8080, login admin / admin (local use only)
	$(PYTHON) -m ml.orchestration standalone

mlflow: venv  ## the MLflow UI on the platform's tracking store, http://localhost:5000
	$(VENV)/bin/mlflow ui --port 5000 --backend-store-uri "$$($(PYTHON) -c 'from ml.config import mlflow_tracking_uri; print(mlflow_tracking_uri())')"

# Debian's chromium drives the browser test (Playwright cannot download browsers here). apt-get
# update may report unsigned extra repositories and still leave usable lists: go on regardless.
browser:  ## install Debian's chromium for the browser test when missing (needs root)
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq || true; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is missing: sudo apt-get install chromium"; exit 1; fi; }

test: venv browser  ## run the whole test suite (browser test included)
	$(PYTHON) -m pytest

lint: venv  ## ruff and sqlfluff
	$(VENV)/bin/ruff check .
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint models

bench: venv  ## benchmarks (about 20 minutes): writes bench/results.md
	$(PYTHON) bench/bench_foundation.py
	$(PYTHON) bench/bench_metrics.py
	$(PYTHON) bench/bench_recommender.py
	$(PYTHON) bench/bench_propensity.py
	$(PYTHON) bench/bench_activation.py

clean:  ## remove generated data and reports (keeps .venv)
	rm -rf data reports/* dbt_project/target dbt_project/logs
