"""Registries: apps, enterprises, users, developers and their subscriptions."""
