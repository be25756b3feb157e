"""MQTT adapter: JSON topics and Sparkplug B from a broker."""
