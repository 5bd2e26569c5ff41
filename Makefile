# make test: set up what the suite needs (scripts/ensure-services), create .venv with the
#            dev extra, lint, and run every test on this machine's default combination,
#            then the master-side suite on SQLite and the MariaDB pass.
# make test-matrix: the same set-up, then every supported combination (noxfile.py).
# make mutate: mutation testing of the modules that guard the data (scripts/mutate); every
#              survivor must be listed in tests/mutation-survivors.md.
# make demo: replicate a few rows from a master to a replica service (needs RabbitMQ);
#            installs only the package and its runtime dependencies.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: test test-postgres test-sqlite test-mariadb test-matrix services lint demo bench clean venv \
	mutate mutate-sample

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	@echo "Installing cqrs-outbox with its dev extra into $(VENV) ..."
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(RUNTIME_STAMP) $(STAMP)

# The demo's needs only: Django and pika (SQLite stands in for PostgreSQL). pip's own
# lines show each package as it comes.
$(RUNTIME_STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	@echo "Installing cqrs-outbox and its runtime dependencies into $(VENV) ..."
	$(PIP) install --progress-bar on -e .
	touch $(RUNTIME_STAMP)

venv: $(STAMP)

# Before anything is installed, so a missing piece stops the run in seconds.
services:
	@scripts/ensure-services

test: services
	@$(MAKE) --no-print-directory lint test-postgres test-sqlite test-mariadb

lint: $(STAMP)
	$(VENV)/bin/ruff check cqrs_outbox relay tests bench examples noxfile.py
	$(VENV)/bin/mypy relay cqrs_outbox/core

test-postgres: $(STAMP)
	CQRS_TEST_DB=postgres $(PY) -m pytest -q

# What the MariaDB pass runs: tests not needing PostgreSQL, and those marked to run on
# MariaDB as well (the same as MARIADB_PASS in noxfile.py).
MARIADB_PASS := -m "not postgres or mysql" tests/unit tests/integration/master \
	tests/integration/relay tests/integration/replica tests/integration/ops \
	tests/acceptance/replica/test_wire_compat.py tests/faults/relay

# The master-side suite again on SQLite, the embedded default.
test-sqlite: $(STAMP)
	CQRS_TEST_DB=sqlite $(PY) -m pytest -q -m "not postgres" tests/unit tests/integration/master

# The master, relay, replica and ops suites on MariaDB (or MySQL: MYSQL_HOST, MYSQL_TCP_PORT).
test-mariadb: $(STAMP)
	CQRS_TEST_DB=mariadb $(PY) -m pytest -q $(MARIADB_PASS)

# Every combination of noxfile.py, then the counts of each; fails if any failed.
test-matrix: services
	@$(MAKE) --no-print-directory $(STAMP)
	rm -rf .nox/reports
	$(VENV)/bin/nox; status=$$?; scripts/matrix-summary || status=1; exit $$status

# Every mutant of every listed module: hours on two cores. MODULE=relay/engine.py for one.
mutate: services $(STAMP)
	$(PY) scripts/mutate $(if $(MODULE),--module $(MODULE))

# What CI runs: 10 random mutants a module within 9 minutes; fails on an unlisted survivor.
mutate-sample: services $(STAMP)
	$(PY) scripts/mutate --sample 10 --budget 540

demo:
	@scripts/ensure-services venv rabbitmq
	@$(MAKE) --no-print-directory $(RUNTIME_STAMP)
	@$(PY) examples/demo.py

clean:
	rm -rf $(VENV) .nox build dist *.egg-info

# make chaos MINUTES=20: the long chaos profile, writers and faults for that many minutes.
chaos: $(STAMP)
	$(PY) -m tests.faults.chaos --minutes $(or $(MINUTES),20)

# make fuzz EXAMPLES=2000: the long fuzzing profile of the replica consumer (real broker).
fuzz: $(STAMP)
	CQRS_TEST_DB=postgres CQRS_FUZZ_EXAMPLES=$(or $(EXAMPLES),2000) $(PY) -m pytest -q tests/acceptance/replica/test_fuzz.py
