"""Discovery over an in-memory address space (unit tests; the integration tests browse a server)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.opcua.discovery import discover
from adapters.opcua.nodes import NodeKind, Reading, Reference, VariableAttributes
from tests.adapters.opcua.opcuatest import source

OBJECTS = "i=85"


@dataclass
class FakeSpace:
    """Nodes by id: (parent, name, kind, is_property, value, data type, writable)."""

    nodes: dict[str, tuple[str, str, NodeKind, bool, Any, str, bool]] = field(default_factory=dict)
    counter: int = 0
    browsed: int = 0
    requests: int = 0

    def add(self, parent: str, name: str, kind: NodeKind = NodeKind.OBJECT, **kw: Any) -> str:
        self.counter += 1
        node_id = f"ns=2;i={self.counter}"
        self.nodes[node_id] = (
            parent,
            name,
            kind,
            kw.get("prop", False),
            kw.get("value"),
            kw.get("data_type", "float64"),
            kw.get("writable", False),
        )
        return node_id

    def device(self, parent: str, name: str, *points: str, **props: str) -> str:
        obj = self.add(parent, name)
        for prop, value in props.items():
            self.add(obj, prop, NodeKind.VARIABLE, prop=True, value=value, data_type="string")
        for point in points:
            self.add(obj, point, NodeKind.VARIABLE, writable=point.startswith("Set"))
        return obj

    async def browse(self, node_ids: Sequence[str]) -> dict[str, list[Reference]]:
        self.browsed += len(node_ids)
        self.requests += 1
        out: dict[str, list[Reference]] = {n: [] for n in node_ids}
        for nid, (parent, name, kind, prop, *_rest) in self.nodes.items():
            if parent in out:
                out[parent].append(Reference(nid, name, kind, prop, 2, name))
        return out

    async def browse_name(self, node_id: str) -> str | None:
        return self.nodes[node_id][1] if node_id in self.nodes else None

    async def read(self, node_ids: Sequence[str]) -> list[Reading]:
        return [Reading(self.nodes[n][4], 0) for n in node_ids]

    async def variable_attributes(self, node_ids: Sequence[str]) -> list[VariableAttributes]:
        return [VariableAttributes(self.nodes[n][5], self.nodes[n][6]) for n in node_ids]


DI = {"Manufacturer": "ACME", "Model": "X1", "SerialNumber": "42", "DeviceClass": "press"}


def _plant() -> tuple[FakeSpace, str]:
    space = FakeSpace()
    plant = space.add(OBJECTS, "Plant")
    space.device(plant, "Press-1", "Force", "Setpoint", **DI)
    line = space.add(plant, "Line2")
    pump = space.device(
        line,
        "Pump-1",
        "Flow",
        Manufacturer="Tally Simulator (simulated)",
        Model="P",
        SerialNumber="7",
    )
    motor = space.add(pump, "Motor")
    space.add(motor, "Speed", NodeKind.VARIABLE, data_type="int32")
    space.device(pump, "Valve-1", "Open", **DI)  # a device nested in a device
    space.device(line, "Sensor-1", "Temp", Manufacturer="ACME")  # no Model/SerialNumber
    return space, plant


async def test_objects_with_identification_are_devices_with_their_points() -> None:
    space, _ = _plant()
    result = await discover(
        space, source("opc.tcp://h:1", discovery={"root": "Objects/Plant"}), "urn:s"
    )
    assert result.complete
    devices = {d.info.key: d for d in result.devices}
    assert sorted(devices) == [
        "urn:s/Objects/Plant/Line2/Pump-1",
        "urn:s/Objects/Plant/Line2/Pump-1/Valve-1",
        "urn:s/Objects/Plant/Press-1",
    ]
    press = devices["urn:s/Objects/Plant/Press-1"].info
    assert [(p.key, p.writable) for p in press.points] == [("Force", False), ("Setpoint", True)]
    assert press.device_type == "press"
    assert not press.simulated
    assert dict(press.identity) == {
        "application_uri": "urn:s",
        "browse_path": "Objects/Plant/Press-1",
        "manufacturer": "ACME",
        "model": "X1",
        "serial": "42",
    }
    pump = devices["urn:s/Objects/Plant/Line2/Pump-1"].info
    assert pump.simulated
    assert [(p.key, p.data_type) for p in pump.points] == [
        ("Flow", "float64"),
        ("Motor/Speed", "int32"),
    ]


async def test_patterns_make_devices_without_identification() -> None:
    space, _ = _plant()
    config = source(
        "opc.tcp://h:1", discovery={"root": "Objects", "patterns": ["Objects/*/Line2/Sensor-*"]}
    )
    result = await discover(space, config, "urn:s")
    assert "urn:s/Objects/Plant/Line2/Sensor-1" in {d.info.key for d in result.devices}


async def test_node_budget_makes_the_pass_incomplete() -> None:
    space, _ = _plant()
    result = await discover(
        space, source("opc.tcp://h:1", discovery={"root": "Objects/Plant", "max_nodes": 5}), "urn:s"
    )
    assert not result.complete
    assert result.nodes_browsed == 5


async def test_depth_bounds_the_scope_without_making_it_incomplete() -> None:
    space, _ = _plant()
    result = await discover(
        space, source("opc.tcp://h:1", discovery={"root": "Objects", "max_depth": 3}), "urn:s"
    )
    assert result.complete
    assert [d.info.key for d in result.devices] == ["urn:s/Objects/Plant/Press-1"]


async def test_explicit_devices_keep_their_id_and_missing_ones_are_reported() -> None:
    space, _ = _plant()
    sensor = next(n for n, v in space.nodes.items() if v[1] == "Sensor-1")
    config = source(
        "opc.tcp://h:1",
        discovery={"root": "Objects/Plant"},
        industry="C33",
        devices=[
            {"id": "sensor", "node_id": sensor, "type": "thermometer", "region": "360100"},
            {"id": "press", "browse_path": "Objects/Plant/Press-1"},
            {"id": "ghost", "node_id": "ns=2;i=999"},
        ],
    )
    result = await discover(space, config, "urn:s")
    devices = {d.info.key: d.info for d in result.devices}
    assert result.missing == ("ghost",)
    assert devices["sensor"].device_type == "thermometer"
    assert devices["sensor"].region == "360100"
    assert devices["sensor"].industry == "C33"
    assert [p.key for p in devices["sensor"].points] == ["Temp"]
    # the explicitly listed press is not found a second time by browsing
    assert "urn:s/Objects/Plant/Press-1" not in devices
    assert devices["press"].device_type == "press"


async def test_missing_root_is_an_error_naming_it() -> None:
    space, _ = _plant()
    with pytest.raises(Exception, match="browse root 'Objects/Nowhere' does not exist"):
        await discover(
            space, source("opc.tcp://h:1", discovery={"root": "Objects/Nowhere"}), "urn:s"
        )


async def test_many_listed_devices_cost_one_browse_per_level_not_per_device() -> None:
    space = FakeSpace()
    folder = space.add(OBJECTS, "DeviceSet")
    for n in range(60):
        pump = space.device(folder, f"pump-{n:02d}", "Flow", **DI)
        space.add(space.add(pump, "Motor"), "Speed", NodeKind.VARIABLE)
    config = source(
        "opc.tcp://h:1",
        discovery={"root": "Objects/DeviceSet"},
        devices=[
            {"id": f"p{n}", "browse_path": f"Objects/DeviceSet/pump-{n:02d}"} for n in range(60)
        ],
    )
    result = await discover(space, config, "urn:s")
    assert sorted(d.info.key for d in result.devices) == sorted(f"p{n}" for n in range(60))
    assert all([p.key for p in d.info.points] == ["Flow", "Motor/Speed"] for d in result.devices)
    # resolving: Objects, DeviceSet; walking: DeviceSet, the pumps, their Motors, the leaves
    assert space.requests <= 6


async def test_a_device_nested_in_a_listed_device_is_still_discovered() -> None:
    space, _ = _plant()
    config = source(
        "opc.tcp://h:1",
        discovery={"root": "Objects/Plant"},
        devices=[{"id": "pump", "browse_path": "Objects/Plant/Line2/Pump-1"}],
    )
    result = await discover(space, config, "urn:s")
    devices = {d.info.key: d.info for d in result.devices}
    assert sorted(devices) == [
        "pump",
        "urn:s/Objects/Plant/Line2/Pump-1/Valve-1",
        "urn:s/Objects/Plant/Press-1",
    ]
    assert [p.key for p in devices["pump"].points] == ["Flow", "Motor/Speed"]
