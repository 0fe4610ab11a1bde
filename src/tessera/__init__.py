"""Tessera: authentication for companies that sell a public API."""

from tessera.principal import Principal

__all__ = ["Principal", "__version__"]
__version__ = "0.1.0"
