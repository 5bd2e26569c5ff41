"""Replica models of the test project (filled in with the replica side)."""
