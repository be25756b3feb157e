"""Errors of reads and writes requested from the OPC UA adapter.

Each error also subclasses the control contract's outcome (adapters/control.py), so the
collector's control service records the right outcome without knowing the protocol.
"""

from __future__ import annotations

from adapters import control


class ControlError(control.ControlError):
    """A read or write could not be done; the message names the device and point."""


class UnknownDevice(ControlError, control.ControlTargetUnknown):
    """No device with this key is known on this connection."""


class UnknownPoint(ControlError, control.ControlTargetUnknown):
    """The device has no point with this key."""


class PointNotWritable(ControlError, control.ControlNotAllowed):
    """The point is read-only for this user, or not allowed by the configuration; nothing sent."""


class WriteError(ControlError, control.ControlNotAllowed):
    """The value cannot be written as the point's data type (or breaks its bounds); nothing sent."""


class NotConnected(ControlError, control.ControlUnavailable):
    """The connection to the server is down right now."""


class WriteRejected(ControlError, control.ControlRejected):
    """The server answered the write (or the read) with a bad status."""


class RequestTimeout(ControlError, control.ControlTimeout):
    """The server did not answer a read or write in time; a write's effect is unknown."""


class UnknownMethod(ControlError, control.ControlTargetUnknown):
    """No method with this key is configured for the device (or the server has no such node)."""


class CallRejected(ControlError, control.ControlRejected):
    """The server answered a method call with a bad status."""
