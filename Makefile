# Two commands set everything up: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON := $(VENV)/bin/python
export PZ_DATA_DIR    ?= $(CURDIR)/data
export PZ_REPORTS_DIR ?= $(CURDIR)/reports
export PZ_CONFIG      ?= $(CURDIR)/config/personalization.yml
DS ?= $(shell sed -n 's/^ *end_date: *\([0-9-]*\).*/\1/p' $(PZ_CONFIG) | head -1)

.PHONY: help venv system browser postgres data demo run backfill spark airflow serve mlflow test test-fast test-integration outputs lint bench bench-nightly bench-real-data bench-uplift clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The virtualenv is rebuilt whenever requirements.txt changes. uv installs in seconds; when uv
# cannot be had, pip does the same job more slowly.
$(VENV)/.installed: requirements.txt Makefile
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@if $(PYTHON) -m pip install --quiet uv 2>/dev/null; then \
		$(VENV)/bin/uv pip install --quiet --python $(PYTHON) -r requirements.txt; \
	else \
		echo "uv unavailable: installing with pip"; \
		$(PYTHON) -m pip install --quiet -r requirements.txt; \
	fi
	@# Bytecode for every installed module, once: uv does not write it, and where PYTHONDONTWRITEBYTECODE
	@# is set (as on this project's development machines) every process compiles its imports from source
	@# again (measured: a monitor_drift task took 46 s, 17.5 s with the bytecode written). Some packages
	@# ship templates named .py that are not Python: compileall reports them, nothing is wrong.
	@$(PYTHON) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

venv: $(VENV)/.installed  ## create or update .venv with the pinned requirements

data: venv  ## generate the demo landing data (config/personalization.yml, section demo)
	$(PYTHON) -m ml synthetic

# PZ_WAREHOUSE_ENGINE=spark puts the whole night on a local Spark session (Java from Debian).
run: venv $(if $(filter spark,$(PZ_WAREHOUSE_ENGINE)),system)  ## run the nightly DAG for one logical date, in-process: make run DS=YYYY-MM-DD
	$(PYTHON) -m ml run --ds $(DS) --summary

backfill: venv  ## run the DAG for a range, in order, in-process: make backfill START=... END=...
	$(PYTHON) -m ml backfill --start $(START) --end $(END) --summary

spark: venv system  ## the nightly DAG for one logical date with the warehouse on Spark: make spark DS=YYYY-MM-DD
	PZ_WAREHOUSE_ENGINE=spark $(PYTHON) -m ml run --ds $(DS) --summary

demo: data  ## set up, generate the demo data, run the DAG for its last days, print what was produced
	$(PYTHON) -m ml demo --summary

airflow: venv  ## airflow standalone on http://localhost:8080, login admin / admin (local use only)
	$(PYTHON) -m ml standalone

serve: venv  ## the online decision service on http://127.0.0.1:8000 (docs at /docs), from the last published night
	$(PYTHON) -m ml serve

mlflow: venv  ## the MLflow UI on the platform's tracking store, http://localhost:5000
	$(VENV)/bin/mlflow ui --port 5000 --backend-store-uri "$$($(PYTHON) -c 'from ml.paths import mlflow_tracking_uri; print(mlflow_tracking_uri())')"

# Debian packages the tests need: chromium drives the browser tests (Playwright cannot download
# browsers here); PostgreSQL backs the test of Airflow and MLflow on PostgreSQL; Java runs the
# local Spark session of the dbt Spark target, and PostgreSQL's JDBC driver its metastore in
# PostgreSQL (the test of Spark tasks side by side, as in the compose profile). One apt-get update for all; it may report unsigned
# extra repositories and still leave usable lists: go on regardless.
system:  ## install Debian's chromium, postgresql, Java 17 and PostgreSQL's JDBC driver when missing (needs root)
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	command -v pg_ctlcluster >/dev/null || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	[ -f /usr/share/java/postgresql.jar ] || missing="$$missing libpostgresql-jdbc-java"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq || true; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "missing Debian packages: sudo apt-get install $$missing"; exit 1; fi; fi

browser: system  ## Debian's chromium for the browser tests

# The test role may create databases (each test run makes its own and drops it).
PG_TEST_ROLE := personalization_test
postgres: system  ## start the local PostgreSQL cluster and create the test role (needs root)
	@cluster="$$(pg_lsclusters -h | head -1)"; set -- $$cluster; \
	[ "$$4" = online ] || pg_ctlcluster "$$1" "$$2" start
	@su postgres -c "psql -tAc \"select 1 from pg_roles where rolname = '$(PG_TEST_ROLE)'\"" | grep -q 1 || \
		su postgres -c "psql -qc \"create role $(PG_TEST_ROLE) login createdb password '$(PG_TEST_ROLE)'\""

test: venv browser postgres  ## run the whole test suite: unit, integration and end-to-end (what CI runs)
	$(PYTHON) -m pytest

test-fast: venv  ## the unit tests only (no warehouse, no Airflow): about 90 s on 2 cores, run them while you work
	$(PYTHON) -m pytest tests/unit

test-integration: venv  ## unit and integration tests (dbt-built warehouses, the stages), no end-to-end nights
	$(PYTHON) -m pytest tests/unit tests/integration

outputs: venv  ## fingerprint what a demo produced (tables, export files, manifests): make outputs OUT=file.json
	$(PYTHON) tools/demo_outputs.py record $(PZ_DATA_DIR) $(OUT)

lint: venv  ## ruff, the layer contracts (import-linter) and sqlfluff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint models

bench: venv  ## benchmarks (about 20 minutes): writes bench/results.md
	$(PYTHON) bench/bench_foundation.py
	$(PYTHON) bench/bench_metrics.py
	$(PYTHON) bench/bench_recommender.py
	$(PYTHON) bench/bench_propensity.py
	$(PYTHON) bench/bench_activation.py
	$(PYTHON) bench/bench_experiments.py

bench-real-data: venv  ## the models on MovieLens beside their peers (about 10 minutes): writes bench/results.md
	$(PYTHON) bench/bench_real_data.py

bench-uplift: venv  ## uplift targeting on a planted campaign and on an imported export against propensity, random and the oracle (about 8 minutes): bench/results.md
	$(PYTHON) bench/bench_uplift.py
	$(PYTHON) bench/bench_campaign_export.py

bench-nightly: venv  ## the whole nightly run at 10k, 100k and 1M customers (about 2 hours): bench/results.md
	$(PYTHON) bench/bench_nightly.py --customers 10000 100000 1000000 --duckdb-memory-limit 14GB

clean:  ## remove generated data and reports (keeps .venv)
	rm -rf data reports/* dbt_project/target dbt_project/logs
