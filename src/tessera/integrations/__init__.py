"""Integrations of Tessera into the applications it protects."""
