"""Shared test fixtures for Tessera's suite and the examples' suites (``tests/fixtures.py``)."""

pytest_plugins = ["tests.fixtures"]
