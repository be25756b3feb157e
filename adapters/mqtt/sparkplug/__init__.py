"""Sparkplug B: the payload definition, its codec and the host session state."""
