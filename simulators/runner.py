"""Runs a whole fleet: every protocol's simulator, and the manifest of what is served."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType

from simulators.fleet import (
    Fleet,
    FleetError,
    Manifest,
    ProtocolSimulator,
    build_manifest,
    load_fleet,
    plugin_for,
    write_manifest,
)

DEMO_FLEET = Path(__file__).with_name("fleets") / "demo.yaml"

log = logging.getLogger("tally.simulators")


class FleetSimulator:
    """Serves a fleet's devices (optionally only some protocols) and builds its manifest."""

    def __init__(
        self, fleet: Fleet, *, host: str = "127.0.0.1", protocols: Collection[str] | None = None
    ) -> None:
        self.fleet = fleet
        self.host = host
        used = fleet.protocols()
        if protocols is not None:
            unknown = sorted(set(protocols) - set(used))
            if unknown:
                raise FleetError(
                    f"fleet {fleet.name!r} has no {', '.join(unknown)} devices "
                    f"(it uses: {', '.join(used)})"
                )
        self.protocols = [p for p in used if protocols is None or p in protocols]
        self.simulators: dict[str, ProtocolSimulator] = {
            p: plugin_for(p).simulator(fleet, host) for p in self.protocols
        }
        self.manifest: Manifest | None = None

    async def start(self) -> Manifest:
        """Start every protocol's simulator; return the manifest of the served devices."""
        served = []
        try:
            for simulator in self.simulators.values():
                served.extend(await simulator.start())
        except BaseException:
            await self.stop()
            raise
        self.manifest = build_manifest(self.fleet, served)
        return self.manifest

    async def stop(self) -> None:
        """Stop every simulator (in reverse order)."""
        for simulator in reversed(list(self.simulators.values())):
            await simulator.stop()

    async def __aenter__(self) -> Manifest:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(
    fleet_path: Path,
    manifest_path: Path | None,
    *,
    host: str = "127.0.0.1",
    protocols: Collection[str] | None = None,
    stop: asyncio.Event | None = None,
) -> Manifest:
    """Serve a fleet until `stop` is set (or SIGINT/SIGTERM); write the manifest once serving."""
    fleet = load_fleet(fleet_path)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        async with FleetSimulator(fleet, host=host, protocols=protocols) as manifest:
            if manifest_path is not None:
                write_manifest(manifest, manifest_path)
            endpoints = sorted({d.endpoint for d in manifest.devices})
            print(
                f"fleet {fleet.name!r}: serving {len(manifest.devices)} simulated device(s) on "
                f"{', '.join(endpoints)}"
                + (f"; manifest {manifest_path}" if manifest_path else ""),
                flush=True,
            )
            await stop.wait()
            return manifest
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by `tally sim` and `python -m simulators[.<protocol>]`."""
    parser.add_argument(
        "--fleet", type=Path, default=DEMO_FLEET, help=f"fleet spec (default: {DEMO_FLEET.name})"
    )
    parser.add_argument("--manifest", type=Path, help="write the ground-truth manifest here (JSON)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")


def run_from_args(args: argparse.Namespace, protocols: Collection[str] | None = None) -> int:
    """Serve the fleet named by parsed arguments; return an exit code."""
    try:
        asyncio.run(serve(args.fleet, args.manifest, host=args.host, protocols=protocols))
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None, protocols: Collection[str] | None = None) -> int:
    """Command line of `python -m simulators` (all protocols) and per-protocol entry points."""
    only = f" ({', '.join(protocols)} only)" if protocols else ""
    parser = argparse.ArgumentParser(description=f"Serve a simulated device fleet{only}.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_from_args(args, protocols)
