"""Shared fixtures. Each run gets databases, exchanges and queues of its own: the names
are made unique in tests/testproject/settings.py, which pytest-django reads first."""
