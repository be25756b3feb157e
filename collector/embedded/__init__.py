"""Throwaway servers (PostgreSQL, Mosquitto) for tests and `tally demo`."""
