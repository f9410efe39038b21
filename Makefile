# Two commands set everything up: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON := $(VENV)/bin/python
export PZ_DATA_DIR    ?= $(CURDIR)/data
export PZ_REPORTS_DIR ?= $(CURDIR)/reports
export PZ_CONFIG      ?= $(CURDIR)/config/personalization.yml
DS ?= $(shell sed -n 's/^ *end_date: *\([0-9-]*\).*/\1/p' $(PZ_CONFIG) | head -1)

.PHONY: help venv data demo run test lint format bench clean

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

run: venv  ## build one logical date: make run DS=YYYY-MM-DD
	$(PYTHON) -m ml.pipeline --ds $(DS) --summary

demo: data  ## set up, generate the demo data, run every stage, print what was produced
	$(PYTHON) -m ml.pipeline --ds $(DS) --summary

test: venv  ## run the whole test suite
	$(PYTHON) -m pytest

lint: venv  ## ruff and sqlfluff
	$(VENV)/bin/ruff check .
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint models

bench: venv  ## benchmarks (about 15 minutes): writes bench/results.md
	$(PYTHON) bench/bench_foundation.py
	$(PYTHON) bench/bench_metrics.py

clean:  ## remove generated data and reports (keeps .venv)
	rm -rf data reports/* dbt_project/target dbt_project/logs
