"""MQTT device simulator: JSON devices and Sparkplug B edge nodes on a real broker."""
