"""Bundled device simulators for tests and the demo."""
