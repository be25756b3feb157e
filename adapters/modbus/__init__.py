"""Modbus TCP and RTU adapter."""
