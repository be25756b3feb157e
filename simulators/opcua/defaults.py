"""The small built-in set of simulated OPC UA devices (used when no fleet is given)."""

from __future__ import annotations

from typing import Any

from simulators.opcua.models import OpcUaFleetDevice

_DEVICES: list[dict[str, Any]] = [
    {
        "id": "boiler-01",
        "name": "Steam boiler 1",
        "type": "boiler",
        "industry": "C2614",
        "region": "360100",
        "update_interval": 0.5,
        "points": [
            {
                "key": "Temperature",
                "unit": "°C",
                "signal": {"kind": "sine", "base": 180, "amplitude": 15, "period": 20},
            },
            {
                "key": "Pressure",
                "data_type": "float32",
                "unit": "bar",
                "signal": {"kind": "sine", "base": 12, "amplitude": 2, "period": 30},
            },
            {
                "key": "Running",
                "data_type": "bool",
                "signal": {"kind": "square", "base": 0, "amplitude": 1, "period": 40},
            },
            {
                "key": "Setpoint",
                "unit": "°C",
                "writable": True,
                "signal": {"kind": "constant", "value": 185},
            },
            {
                "key": "Burner/FlameOn",
                "data_type": "bool",
                "signal": {"kind": "square", "base": 0, "amplitude": 1, "period": 10},
            },
        ],
    },
    {
        "id": "press-01",
        "name": "Stamping press 1",
        "type": "press",
        "industry": "C3311",
        "region": "360100",
        "update_interval": 0.5,
        "points": [
            {
                "key": "StrokeCount",
                "data_type": "uint32",
                "signal": {"kind": "counter", "base": 0, "step": 1, "period": 1},
            },
            {
                "key": "Force",
                "unit": "kN",
                "signal": {"kind": "noise", "base": 800, "amplitude": 50, "period": 1},
            },
            {
                "key": "Enabled",
                "data_type": "bool",
                "writable": True,
                "signal": {"kind": "constant", "value": True},
            },
            {
                "key": "SpeedLimit",
                "data_type": "int16",
                "writable": True,
                "unit": "1/min",
                "signal": {"kind": "constant", "value": 30},
            },
        ],
    },
    {
        "id": "pump-01",
        "name": "Feed water pump 1",
        "type": "pump",
        "industry": "C2614",
        "region": "360100",
        "update_interval": 1.0,
        "points": [
            {
                "key": "FlowRate",
                "unit": "m³/h",
                "signal": {"kind": "sawtooth", "base": 40, "amplitude": 10, "period": 15},
            },
            {
                "key": "State",
                "data_type": "string",
                "signal": {"kind": "constant", "value": "running"},
            },
            {
                "key": "Mode",
                "data_type": "string",
                "writable": True,
                "signal": {"kind": "constant", "value": "auto"},
            },
        ],
    },
]


def default_devices() -> list[OpcUaFleetDevice]:
    """Return a boiler, a press and a pump with read-only, writable and nested points."""
    return [OpcUaFleetDevice.model_validate({"protocol": "opcua", **d}) for d in _DEVICES]
