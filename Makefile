# Harbor's developer commands. Quick start: `make demo`, then `make test`.
# Every target is idempotent: re-running one that has nothing to do is quick.

SHELL := /bin/bash
PYTHON3 ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
MANAGE := $(PYTHON) manage.py
# The database `make db` creates on the local PostgreSQL: the one named in DATABASE_URL, if set.
DB_NAME ?= $(or $(notdir $(firstword $(subst ?, ,$(DATABASE_URL)))),harbor)
PGARGS := -h 127.0.0.1 -U postgres
PYTEST_ARGS ?=
# Harbor refuses to start without a strong SECRET_KEY unless DEBUG is on: what make runs gets
# the one in the environment, else this checkout's development key (.run/secret-key).
ifndef SECRET_KEY
SECRET_KEY := $(shell PYTHON3=$(PYTHON3) bash scripts/dev-secret-key.sh)
endif
export SECRET_KEY

.PHONY: install services db migrate demo stop test check lint format

## install: create .venv and install Harbor with its test tools (again only if pyproject changed)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || $(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

## services: start PostgreSQL and Redis if they are not running
services:
	@bash .ci/services.sh

## db: create the database $(DB_NAME) if it is missing
db: services
	@psql $(PGARGS) -tAc "SELECT 1 FROM pg_database WHERE datname = '$(DB_NAME)'" | grep -q 1 \
		|| { echo "creating database $(DB_NAME)"; createdb $(PGARGS) $(DB_NAME); }

## migrate: apply the database migrations
migrate: install db
	$(MANAGE) migrate --noinput

## demo: run web, worker, beat and the example external CI in the background, and build once
demo: migrate
	@VENV=$(VENV) bash examples/demo.sh start

## stop: stop what `make demo` started (pid files in .run/)
stop:
	@VENV=$(VENV) bash examples/demo.sh stop

## test: run the whole test suite on real PostgreSQL and Redis (pytest exit 5, no tests, fails)
test: install db
	@status=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

## check: what review forgets (CI runs it beside the tests): lint, format, missing migrations
check: lint
	$(MANAGE) makemigrations --check --dry-run

## lint: ruff's checks and formatting, as configured in pyproject.toml
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## format: apply ruff's formatting and safe fixes
format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
