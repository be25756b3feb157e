"""Signed report bundles: what they hold, how they are built, signed and verified."""
