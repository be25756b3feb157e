"""Finding devices and their points by browsing an OPC UA address space.

A device is an Object that carries the identification properties (OPC UA DI:
Manufacturer, Model, SerialNumber by default), or whose browse path matches a
configured pattern, or that is listed explicitly. Its Variables (not properties),
down through sub-objects that are not devices themselves, become its points.

Identity: NodeIds may change when a server restarts, browse paths do not, so a
discovered device's key is `<server ApplicationUri>/<browse path>` (for example
`urn:tally:simulator/Objects/TallySimulator/Boiler-01`) and a point's key is its
browse path below the device. Explicitly listed devices keep their configured id.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adapters.base import DeviceInfo, PointInfo, Quality
from adapters.opcua.config import OpcUaDevice, OpcUaSource
from adapters.opcua.nodes import (
    NUMERIC_TYPES,
    OBJECTS_NODE_ID,
    NodeKind,
    Reading,
    Reference,
    VariableAttributes,
    join_path,
    split_path,
)

log = logging.getLogger(__name__)

PROTOCOL = "opcua"
UNIT_PROPERTY = "EngineeringUnits"
SIMULATED_MARKS = ("(simulated)",)  # the mark every bundled simulator puts in its vendor name


class DiscoveryError(Exception):
    """Browsing could not start (e.g. the root or an explicit device is missing)."""


class Browser(Protocol):
    """What discovery needs from a session (OpcUaClient provides it)."""

    async def browse(self, node_ids: Sequence[str]) -> dict[str, list[Reference]]:
        """Return the hierarchical Object and Variable children of each node."""
        ...

    async def browse_name(self, node_id: str) -> str | None:
        """Return the browse name of a node, or None when unknown."""
        ...

    async def read(self, node_ids: Sequence[str]) -> list[Reading]:
        """Read the Value attribute of nodes, in order."""
        ...

    async def variable_attributes(self, node_ids: Sequence[str]) -> list[VariableAttributes]:
        """Read data type and write access of Variables, in order."""
        ...


@dataclass(frozen=True, slots=True)
class FoundPoint:
    """A point of a discovered device and the NodeId it has in this session."""

    key: str
    node_id: str
    info: PointInfo

    @property
    def numeric(self) -> bool:
        """True when a deadband can apply to this point."""
        return self.info.data_type in NUMERIC_TYPES


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A discovered (or explicitly listed) device, its Object's NodeId and its points."""

    info: DeviceInfo
    node_id: str
    points: tuple[FoundPoint, ...]


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """Devices found by one browse pass; complete is False when max_nodes cut it short."""

    devices: tuple[FoundDevice, ...]
    complete: bool
    nodes_browsed: int
    missing: tuple[str, ...] = ()


@dataclass(slots=True)
class _Node:
    ref: Reference
    path: tuple[str, ...]
    children: list[_Node] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    nodes: dict[str, _Node]
    complete: bool
    count: int


async def _walk(
    browser: Browser, roots: Sequence[_Node], max_depth: int, max_nodes: int, include_standard: bool
) -> _Walk:
    """Breadth-first browse below every root together, bounded by depth and node count.

    One browse request (chunked by the client) per level for all roots, so a pass over
    hundreds of explicitly listed devices costs a few round trips, not a few per device.
    max_depth sets the scope below each root (nodes deeper down are not part of it);
    max_nodes is a safety bound per pass, and hitting it makes the walk incomplete. A
    root met again below another root is linked as a child there, not browsed twice.
    """
    nodes: dict[str, _Node] = {}
    frontier: list[_Node] = []
    for root in roots:
        if root.ref.node_id not in nodes:
            nodes[root.ref.node_id] = root
            frontier.append(root)
    root_ids = set(nodes)
    complete = True
    count = 0
    for _depth in range(max_depth):
        if not frontier:
            break
        children = await browser.browse([n.ref.node_id for n in frontier])
        next_frontier: list[_Node] = []
        for parent in frontier:
            for ref in children.get(parent.ref.node_id, []):
                if ref.node_id in nodes:
                    if ref.node_id in root_ids and nodes[ref.node_id] is not parent:
                        parent.children.append(nodes[ref.node_id])
                    continue
                if ref.namespace == 0 and not include_standard:
                    continue
                if count >= max_nodes:
                    complete = False
                    break
                count += 1
                node = _Node(ref, (*parent.path, ref.name))
                nodes[ref.node_id] = node
                parent.children.append(node)
                if not ref.is_property:
                    next_frontier.append(node)
        frontier = next_frontier
    return _Walk(nodes, complete, count)


def _below(root: _Node) -> list[_Node]:
    """Return the root and every node reachable below it, each once."""
    seen = {root.ref.node_id}
    out = [root]
    stack = [root]
    while stack:
        for child in stack.pop().children:
            if child.ref.node_id not in seen:
                seen.add(child.ref.node_id)
                out.append(child)
                stack.append(child)
    return out


async def _resolve_paths(browser: Browser, paths: Sequence[Sequence[str]]) -> list[str | None]:
    """Resolve browse paths starting at 'Objects' to NodeIds (None: not there).

    All paths advance together, one browse request per level, so listing a hundred
    devices under the same folder browses that folder once.
    """
    current: list[str | None] = [
        OBJECTS_NODE_ID if names and names[0] == "Objects" else None for names in paths
    ]
    depth = 1
    while True:
        pending = sorted(
            {
                node
                for node, names in zip(current, paths, strict=True)
                if node and len(names) > depth
            }
        )
        if not pending:
            return current
        children = await browser.browse(pending)
        for index, names in enumerate(paths):
            node = current[index]
            if node is None or len(names) <= depth:
                continue
            match = next((c for c in children.get(node, []) if c.name == names[depth]), None)
            current[index] = match.node_id if match is not None else None
        depth += 1


def _properties(node: _Node) -> dict[str, str]:
    return {c.ref.name: c.ref.node_id for c in node.children if c.ref.is_property}


def _is_simulated(manufacturer: str | None) -> bool:
    text = (manufacturer or "").lower()
    return any(mark in text for mark in SIMULATED_MARKS)


class _Classifier:
    """Decides which Objects are devices and builds their records."""

    def __init__(self, source: OpcUaSource, application_uri: str) -> None:
        self.source = source
        self.application_uri = application_uri
        self.required = tuple(source.discovery.identification)
        self.patterns = tuple(source.discovery.patterns)

    def is_device(self, node: _Node) -> bool:
        if node.ref.kind is not NodeKind.OBJECT:
            return False
        props = _properties(node)
        if all(name in props for name in self.required):
            return True
        path = join_path(node.path)
        return any(fnmatch.fnmatchcase(path, p) for p in self.patterns)

    def point_nodes(self, device: _Node, devices: set[str]) -> list[tuple[str, _Node]]:
        """Variables below a device (not properties, not inside nested devices)."""
        out: list[tuple[str, _Node]] = []
        stack: list[tuple[tuple[str, ...], _Node]] = [((), device)]
        while stack:
            prefix, node = stack.pop()
            for child in node.children:
                if child.ref.is_property or child.ref.node_id in devices:
                    continue
                rel = (*prefix, child.ref.name)
                if child.ref.kind is NodeKind.VARIABLE:
                    out.append((join_path(rel), child))
                stack.append((rel, child))
        out.sort(key=lambda item: item[0])
        return out


async def discover(browser: Browser, source: OpcUaSource, application_uri: str) -> DiscoveryResult:
    """Browse the configured root and the explicit devices; return what was found."""
    disc = source.discovery
    classifier = _Classifier(source, application_uri)
    roots: list[tuple[_Node, OpcUaDevice | None]] = []
    root_names = split_path(disc.root)
    by_path = [e for e in source.devices if e.browse_path is not None]
    wanted = [root_names] if disc.enabled else []
    wanted += [split_path(e.browse_path or "") for e in by_path]
    resolved = await _resolve_paths(browser, wanted)
    if disc.enabled:
        root_id, resolved = resolved[0], resolved[1:]
        if root_id is None:
            raise DiscoveryError(
                f"OPC UA {source.endpoint}: browse root {disc.root!r} does not exist; "
                "check discovery.root (a path of browse names starting with 'Objects')"
            )
        roots.append((_Node(_object_ref(root_id, root_names[-1]), tuple(root_names)), None))
    path_ids = dict(zip((e.id for e in by_path), resolved, strict=True))
    missing: list[str] = []
    for entry in source.devices:
        explicit = await _explicit_root(browser, source, entry, path_ids.get(entry.id))
        if explicit is None:
            missing.append(entry.id)
        else:
            roots.append((explicit, entry))

    walk = await _walk(
        browser, [r for r, _ in roots], disc.max_depth, disc.max_nodes, disc.include_standard
    )
    complete, count = walk.complete, walk.count
    explicit_ids = {node.ref.node_id for node, listed in roots if listed is not None}
    candidates: list[tuple[_Node, OpcUaDevice | None]] = []
    for given, listed in roots:
        root = walk.nodes.get(given.ref.node_id, given)  # an object listed twice: one node
        if listed is not None:
            candidates.append((root, listed))
            continue
        for node in _below(root):
            if node.ref.node_id not in explicit_ids and classifier.is_device(node):
                candidates.append((node, None))
    if not complete:
        log.warning(
            "OPC UA %s: browsing stopped at discovery.max_nodes=%d or max_depth=%d; devices "
            "beyond it are not collected and none are marked vanished until a full pass",
            source.endpoint,
            disc.max_nodes,
            disc.max_depth,
        )
    device_ids = {node.ref.node_id for node, _ in candidates}
    devices = await _build(browser, classifier, candidates, device_ids)
    return DiscoveryResult(devices, complete, count, tuple(missing))


def _object_ref(node_id: str, name: str) -> Reference:
    namespace = 0
    if node_id.startswith("ns="):
        namespace = int(node_id[3:].split(";", 1)[0])
    return Reference(node_id, name, NodeKind.OBJECT, is_property=False, namespace=namespace)


async def _explicit_root(
    browser: Browser, source: OpcUaSource, entry: OpcUaDevice, resolved: str | None
) -> _Node | None:
    if entry.browse_path is not None:
        names = split_path(entry.browse_path)
        node_id = resolved
        if node_id is None:
            log.warning(
                "OPC UA %s: device %r: browse path %r does not exist on the server",
                source.endpoint,
                entry.id,
                entry.browse_path,
            )
            return None
        return _Node(_object_ref(node_id, names[-1]), tuple(names))
    assert entry.node_id is not None
    name = await browser.browse_name(entry.node_id)
    if name is None:
        log.warning(
            "OPC UA %s: device %r: node %r is unknown to the server (NodeIds can change when "
            "a server restarts; a browse_path is stabler)",
            source.endpoint,
            entry.id,
            entry.node_id,
        )
        return None
    return _Node(_object_ref(entry.node_id, name), (entry.node_id,))


async def _build(
    browser: Browser,
    classifier: _Classifier,
    candidates: list[tuple[_Node, OpcUaDevice | None]],
    device_ids: set[str],
) -> tuple[FoundDevice, ...]:
    source = classifier.source
    wanted = {*classifier.required, source.discovery.type_property, "Manufacturer", "Model"}
    wanted |= {"SerialNumber"}
    prop_ids: list[str] = []
    for node, _ in candidates:
        props = _properties(node)
        prop_ids.extend(props[name] for name in sorted(wanted) if name in props)
    per_device = [
        (node, entry, classifier.point_nodes(node, device_ids)) for node, entry in candidates
    ]
    variable_ids = [p.ref.node_id for _, _, points in per_device for _, p in points]
    unit_ids = [
        _properties(p)[UNIT_PROPERTY]
        for _, _, points in per_device
        for _, p in points
        if UNIT_PROPERTY in _properties(p)
    ]
    values = dict(zip(prop_ids + unit_ids, await browser.read(prop_ids + unit_ids), strict=True))
    attributes = dict(
        zip(variable_ids, await browser.variable_attributes(variable_ids), strict=True)
    )
    out: list[FoundDevice] = []
    for node, entry, point_nodes in per_device:
        props = _properties(node)

        def prop(name: str, props: dict[str, str] = props) -> str | None:
            reading = values.get(props.get(name, ""))
            if reading is None or reading.value is None or reading.quality is not Quality.GOOD:
                return None
            return str(reading.value)

        points = []
        for key, pnode in point_nodes:
            attrs = attributes[pnode.ref.node_id]
            unit_id = _properties(pnode).get(UNIT_PROPERTY)
            unit_reading = values.get(unit_id) if unit_id else None
            unit = str(unit_reading.value) if unit_reading and unit_reading.value else None
            point_info = PointInfo(
                key=key,
                address=join_path(pnode.path),
                data_type=attrs.data_type,
                unit=unit,
                writable=attrs.writable,
                description=pnode.ref.display_name if pnode.ref.display_name != key else None,
            )
            points.append(FoundPoint(key, pnode.ref.node_id, point_info))
        path = join_path(node.path)
        identity = {"application_uri": classifier.application_uri, "browse_path": path}
        manufacturer = prop("Manufacturer")
        for label, name in (
            ("manufacturer", "Manufacturer"),
            ("model", "Model"),
            ("serial", "SerialNumber"),
        ):
            value = prop(name)
            if value is not None:
                identity[label] = value
        device_type = prop(source.discovery.type_property)
        if entry is not None:
            identity["node_id"] = node.ref.node_id
            info = DeviceInfo(
                key=entry.id,
                protocol=PROTOCOL,
                endpoint=source.endpoint,
                device_type=entry.type or device_type or source.type,
                industry=entry.industry or source.industry,
                region=entry.region or source.region,
                park=entry.park or source.park,
                enterprise=entry.enterprise or source.enterprise,
                name=entry.name or node.ref.display_name or node.ref.name,
                simulated=_is_simulated(manufacturer),
                identity=identity,
                points=tuple(p.info for p in points),
            )
        else:
            info = DeviceInfo(
                key=f"{classifier.application_uri}/{path}",
                protocol=PROTOCOL,
                endpoint=source.endpoint,
                device_type=device_type or source.type,
                industry=source.industry,
                region=source.region,
                park=source.park,
                enterprise=source.enterprise,
                name=node.ref.display_name or node.ref.name,
                simulated=_is_simulated(manufacturer),
                identity=identity,
                points=tuple(p.info for p in points),
            )
        out.append(FoundDevice(info, node.ref.node_id, tuple(points)))
    out.sort(key=lambda d: d.info.key)
    return tuple(out)
