# make test: create .venv, install the package with its dev extras, run every test.
# make demo: replicate a few rows from a master to a replica service (needs RabbitMQ).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-postgres test-sqlite lint demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) lint test-postgres test-sqlite

lint: $(STAMP)
	$(VENV)/bin/ruff check cqrs_outbox relay tests bench examples
	$(VENV)/bin/mypy relay

test-postgres: $(STAMP)
	CQRS_TEST_DB=postgres $(PY) -m pytest -q

# The master-side suite again on SQLite, the embedded default.
test-sqlite: $(STAMP)
	CQRS_TEST_DB=sqlite $(PY) -m pytest -q -m "not postgres" tests/unit tests/integration/master

demo: $(STAMP)
	@$(PY) examples/demo.py

clean:
	rm -rf $(VENV) build *.egg-info

# make chaos MINUTES=20: the long chaos profile, writers and faults for that many minutes.
chaos: $(STAMP)
	$(PY) -m tests.faults.chaos --minutes $(or $(MINUTES),20)

# make fuzz EXAMPLES=2000: the long fuzzing profile of the replica consumer (real broker).
fuzz: $(STAMP)
	CQRS_TEST_DB=postgres CQRS_FUZZ_EXAMPLES=$(or $(EXAMPLES),2000) $(PY) -m pytest -q tests/acceptance/replica/test_fuzz.py
