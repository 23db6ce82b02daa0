"""The package version (one place: ``pyproject.toml`` and every output's metadata read it)."""

__version__ = "0.1.0"
