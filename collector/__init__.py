"""Tally collector: pipeline, store, configuration and command line."""

__version__ = "0.1.0"
