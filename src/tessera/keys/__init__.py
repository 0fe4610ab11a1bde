"""API keys: format, storage, verification and usage."""
