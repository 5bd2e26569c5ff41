# make test: set up what the suite needs (scripts/ensure-services), create .venv with the
#            dev extra, lint, and run every test on this machine's default combination,
#            then the master-side suite on SQLite and the MariaDB pass.
# make test-matrix: the same set-up, then every supported combination (noxfile.py).
# make mutate: mutation testing of the modules that guard the data (scripts/mutate); every
#              survivor must be listed in tests/mutation-survivors.md.
# make demo: replicate a few rows from a master to a replica service (needs RabbitMQ);
#            installs only the package and its runtime dependencies.
# make docs: serve the documentation site (docs/, mkdocs.yml) at http://127.0.0.1:8000/;
#            make docs-build builds it with `mkdocs build --strict`, as CI does.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
DOCS_STAMP := $(VENV)/.installed-docs
PIP := $(PY) -m pip --disable-pip-version-check
REPORTS := .reports
# One pytest pass of `make test`: its JUnit report and a note of what it ran on go to
# $(REPORTS), from which scripts/matrix-summary prints the counts and one total line.
PYTEST = $(PY) -m pytest -q -o junit_family=xunit1 --junitxml=$(REPORTS)/$@.xml
NOTE = @mkdir -p $(REPORTS) && $(PY) -c 'import sys; print("Python " + sys.version.split()[0] \
	+ ", " + sys.argv[1])' $(1) > $(REPORTS)/$@.txt

# A PYTHON given on the command line (or in the environment) that is not the interpreter
# .venv was made with makes .venv anew, so `make test PYTHON=python3.12` runs on 3.12
# even after a run on another one.
REAL_PYTHON = $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))' \
	2>/dev/null)
ifneq ($(filter command line environment,$(origin PYTHON)),)
ifneq ($(shell cat $(VENV)/.python 2>/dev/null),$(REAL_PYTHON))
VENV_STALE := venv-stale
endif
endif

.PHONY: test test-postgres test-sqlite test-mariadb test-matrix services lint demo bench clean venv \
	venv-stale mutate mutate-sample docs docs-build

venv-stale:
	@echo "$(VENV) was made with another Python than $(PYTHON): making it anew"
	rm -rf $(VENV)

$(VENV)/bin/python: $(VENV_STALE)
	$(PYTHON) -m venv $(VENV)
	@echo "$(REAL_PYTHON)" > $(VENV)/.python

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	@echo "Installing cqrs-outbox with its dev extra into $(VENV) ..."
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(RUNTIME_STAMP) $(DOCS_STAMP) $(STAMP)

# The demo's needs only: Django and pika (SQLite stands in for PostgreSQL). pip's own
# lines show each package as it comes.
$(RUNTIME_STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	@echo "Installing cqrs-outbox and its runtime dependencies into $(VENV) ..."
	$(PIP) install --progress-bar on -e .
	touch $(RUNTIME_STAMP)

# The site's needs only (the docs extra: mkdocs-material), so that `make docs` needs none
# of the services' build prerequisites; the dev extra includes it.
$(DOCS_STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	@echo "Installing cqrs-outbox with its docs extra into $(VENV) ..."
	$(PIP) install --quiet -e '.[docs]'
	touch $(RUNTIME_STAMP) $(DOCS_STAMP)

venv: $(STAMP)

# Before anything is installed, so a missing piece stops the run in seconds.
services:
	@scripts/ensure-services

# Every pass runs even when one fails; the counts of each and one total line end it.
test: services
	@rm -rf $(REPORTS)
	@status=0; $(MAKE) --no-print-directory -k lint test-postgres test-sqlite test-mariadb \
		|| status=1; scripts/matrix-summary --reports $(REPORTS) || status=1; exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check cqrs_outbox relay tests bench examples noxfile.py
	$(VENV)/bin/mypy relay cqrs_outbox/core cqrs_outbox/store

test-postgres: $(STAMP)
	$(call NOTE,PostgreSQL)
	CQRS_TEST_DB=postgres $(PYTEST)

# What the MariaDB pass runs: tests not needing PostgreSQL, and those marked to run on
# MariaDB as well (the same as MARIADB_PASS in noxfile.py).
MARIADB_PASS := -m "not postgres or mysql" tests/unit tests/integration/master \
	tests/integration/relay tests/integration/replica tests/integration/ops \
	tests/acceptance/replica/test_wire_compat.py tests/acceptance/replica/test_bulk_writes.py \
	tests/acceptance/replica/test_writes_outside_orm.py tests/faults/relay

# The master-side suite again on SQLite, the embedded default.
test-sqlite: $(STAMP)
	$(call NOTE,SQLite)
	CQRS_TEST_DB=sqlite $(PYTEST) -m "not postgres" tests/unit tests/integration/master \
		tests/acceptance/replica/test_bulk_writes.py

# The master, relay, replica and ops suites on MariaDB (or MySQL: MYSQL_HOST, MYSQL_TCP_PORT).
test-mariadb: $(STAMP)
	$(call NOTE,MariaDB)
	CQRS_TEST_DB=mariadb $(PYTEST) $(MARIADB_PASS)

# Every combination of noxfile.py, then the counts of each; fails if any failed.
test-matrix: services
	@$(MAKE) --no-print-directory $(STAMP)
	rm -rf .nox/reports
	$(VENV)/bin/nox; status=$$?; scripts/matrix-summary || status=1; exit $$status

# Every mutant of every listed module: hours on two cores. MODULE=relay/engine.py for one;
# JOBS=3 tests three mutants at a time.
mutate: services $(STAMP)
	$(PY) scripts/mutate $(if $(MODULE),--module $(MODULE)) $(if $(JOBS),--jobs $(JOBS))

# What CI runs: up to 6 random mutants of each module whose full run is done and whose
# survivors are all listed (MUTATE_CI; a module joins once `make mutate MODULE=...` has
# listed its survivors), none started after 6 minutes; fails on an unlisted survivor.
MUTATE_CI := cqrs_outbox/replica/rules.py cqrs_outbox/core/wire.py cqrs_outbox/master/outbox.py cqrs_outbox/master/onetrip.py \
	cqrs_outbox/master/outside.py cqrs_outbox/master/triggers.py cqrs_outbox/master/capture.py cqrs_outbox/store/__init__.py \
	relay/engine.py cqrs_outbox/core/signing.py cqrs_outbox/replica/signatures.py \
	cqrs_outbox/store/sqlite.py cqrs_outbox/store/postgresql.py cqrs_outbox/store/mysql.py
mutate-sample: services $(STAMP)
	$(PY) scripts/mutate --sample 6 --budget 360 --jobs 2 $(addprefix --module ,$(MUTATE_CI))

demo:
	@scripts/ensure-services venv rabbitmq
	@$(MAKE) --no-print-directory $(RUNTIME_STAMP)
	@$(PY) examples/demo.py

# NO_MKDOCS_2_WARNING: the theme's notice about MkDocs 2 is not about this site.
docs:
	@scripts/ensure-services venv
	@$(MAKE) --no-print-directory $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# A broken link or anchor, or a page missing from the navigation, fails the build.
docs-build:
	@scripts/ensure-services venv
	@$(MAKE) --no-print-directory $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) .nox $(REPORTS) build dist site *.egg-info

# make chaos MINUTES=20: the long chaos profile, writers and faults for that many minutes.
chaos: $(STAMP)
	$(PY) -m tests.faults.chaos --minutes $(or $(MINUTES),20)

# make fuzz EXAMPLES=2000: the long fuzzing profile of the replica consumer (real broker).
fuzz: $(STAMP)
	CQRS_TEST_DB=postgres CQRS_FUZZ_EXAMPLES=$(or $(EXAMPLES),2000) $(PY) -m pytest -q tests/acceptance/replica/test_fuzz.py
