"""Modbus part of the fleet simulator: data store, pymodbus transport, fleet plug-in."""
