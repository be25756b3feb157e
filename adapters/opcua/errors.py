"""Errors of reads and writes requested from the OPC UA adapter."""

from __future__ import annotations


class ControlError(Exception):
    """A read or write could not be done; the message names the device and point."""


class UnknownDevice(ControlError):
    """No device with this key is known on this connection."""


class UnknownPoint(ControlError):
    """The device has no point with this key."""


class PointNotWritable(ControlError):
    """The point is read-only for this user; nothing was sent."""


class WriteError(ControlError):
    """The value cannot be written as the point's data type; nothing was sent."""


class NotConnected(ControlError):
    """The connection to the server is down right now."""


class WriteRejected(ControlError):
    """The server answered the write with a bad status."""
