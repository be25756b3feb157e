"""Workload simulator: registries and call traffic for a spec, with a ground-truth manifest."""
