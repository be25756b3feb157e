"""Edge adapters: protocol sessions that register devices and emit samples."""
