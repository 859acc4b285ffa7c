# Two commands for a new user: `make demo` and `make test`. Everything installs into .venv.
# `make test-all` adds what is slow by nature (scripts/test.sh); CI runs both.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all install lint bench bench-production bench-smoke bench-save-cost bench-reconcile wheel-check test-releases

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[demo,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) scripts/demo.py

test: install
	bash scripts/test.sh

# `make test`, then what is slow by nature. CI runs `make test test-all`: each once.
test-all: test
	bash scripts/test.sh --slow-only

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The engine alone, Xero's limits lifted (SQLite, in-process).
bench: install
	$(PY) scripts/bench.py

# The wheel, installed into a clean virtualenv, checks and migrates in a host that is not the demo.
wheel-check: install
	bash scripts/wheel_check.sh

# The suite less its slow tests on Django 6.0 and 6.1, each in its own virtualenv
# (noxfile.py; `$(VENV)/bin/nox -s tests-5.2` for 5.2). `make test-all` runs everything on 5.2.
test-releases: install
	$(VENV)/bin/nox -s tests-6.0 tests-6.1

# Production: Xero's real limits, real Celery workers, PostgreSQL + Redis. Minutes; writes
# docs/performance.md. It drops and re-creates BENCH_DATABASE_URL and flushes BENCH_REDIS_URL.
bench-production: install
	$(PY) scripts/bench_production.py $(ARGS)

bench-smoke: install
	$(PY) scripts/bench_production.py --smoke $(ARGS)

# One scenario each, printed (same database and Redis rules): what a funder save costs against
# the floor, and the reconcile of 100,000 funders.
bench-save-cost: install
	$(PY) scripts/bench_production.py --only 5 $(ARGS)

bench-reconcile: install
	$(PY) scripts/bench_production.py --only 6 $(ARGS)
