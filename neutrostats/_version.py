"""The package version, in one place for the package, its outputs and the CLI."""

__version__ = "0.1.0"
