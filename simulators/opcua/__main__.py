"""`python -m simulators.opcua`: serve the built-in devices (or a fleet's OPC UA devices)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from simulators.fleet import FleetError, load_fleet
from simulators.opcua.defaults import default_devices
from simulators.opcua.models import OpcUaFleetDevice
from simulators.opcua.server import APPLICATION_URI, OpcUaSimulatorServer, stored_certificate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.opcua", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--fleet", type=Path, help="serve this fleet spec's OPC UA devices")
    parser.add_argument("--security", choices=["none", "secure", "both"], default="none")
    parser.add_argument("--cert-dir", type=Path, help="keep the server certificate here")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    parser.add_argument(
        "--nodeid-offset",
        default="0",
        help="shift every NodeId by this offset, or 'random' for a new offset each start",
    )
    parser.add_argument("--no-subscriptions", action="store_true", help="refuse subscriptions")
    return parser


def _devices(fleet: Path | None) -> list[OpcUaFleetDevice]:
    if fleet is None:
        return default_devices()
    spec = load_fleet(fleet)
    return [d for d in spec.devices_of("opcua") if isinstance(d, OpcUaFleetDevice)]


async def serve(server: OpcUaSimulatorServer) -> None:
    """Run the server until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(
        f"serving {len(server.devices)} simulated OPC UA device(s) on {server.endpoint}", flush=True
    )
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    try:
        devices = _devices(args.fleet)
    except FleetError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not devices:
        print(f"{args.fleet}: the fleet has no OPC UA devices", file=sys.stderr)
        return 2
    users = {}
    for item in args.user:
        name, sep, password = item.partition(":")
        if not sep or not name:
            print(f"--user {item!r}: expected NAME:PASSWORD", file=sys.stderr)
            return 2
        users[name] = password
    offset = (
        random.randrange(1, 10_000) if args.nodeid_offset == "random" else int(args.nodeid_offset)
    )
    certificate = None
    if args.cert_dir is not None:
        certificate = stored_certificate(args.cert_dir, f"{APPLICATION_URI}:main")
    server = OpcUaSimulatorServer(
        devices,
        host=args.host,
        port=args.port,
        security=args.security,
        users=users,
        nodeid_offset=offset,
        subscriptions=not args.no_subscriptions,
        certificate=certificate,
    )
    asyncio.run(serve(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
