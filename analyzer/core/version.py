"""The package version, in the bottom layer so any stage may print it."""

__version__ = "0.1.0"
