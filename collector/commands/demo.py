"""`tally demo`: everything on embedded defaults — database, simulated fleet, collector, API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from collector.config import TallyConfig, parse_config
from collector.embedded.ports import free_port
from collector.logs import configure as configure_logging
from collector.runtime import ApiServer, stop_on_signals
from collector.service import CollectorService
from collector.store.migrate import migrate

FIRST_COLLECTION_TIMEOUT = 30.0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `demo`."""
    from simulators.runner import DEMO_FLEET

    demo = sub.add_parser(
        "demo", help="run database, simulated fleet, collector and API on embedded defaults"
    )
    demo.add_argument("--fleet", type=Path, default=DEMO_FLEET, help="fleet spec to simulate")
    demo.add_argument("--port", type=int, default=8080, help="API port (a free one if taken)")
    demo.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)"
    )
    demo.set_defaults(handler=run_demo)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ground_truth(manifest: Any) -> dict[str, Any]:
    """Return what the fleet serves: devices, types, points and devices by industry."""
    from criteria.industries import classify

    devices = manifest.devices
    process = [d for d in devices if d.industry and classify(d.industry) == "process"]
    return {
        "connected_devices": len(devices),
        "device_types": len({d.type for d in devices if d.type}),
        "points": sum(len(d.points) for d in devices),
        "process_points": sum(len(d.points) for d in process),
        "by_industry": Counter(d.industry for d in devices),
    }


def _print_comparison(counts: dict[str, Any], truth: dict[str, Any]) -> bool:
    rows = [(k, counts[k], truth[k]) for k in ("connected_devices", "device_types", "points")]
    rows.append(("process_points", counts["process_points"], truth["process_points"]))
    by_industry = {g["key"]: g["connected_devices"] for g in counts["groups"]}
    for industry, expected in sorted(truth["by_industry"].items(), key=lambda kv: str(kv[0])):
        rows.append((f"  industry {industry}", by_industry.get(industry, 0), expected))
    print(f"\n{'measured from PostgreSQL':<28}{'counted':>9}{'fleet truth':>13}")
    agree = True
    for name, measured, expected in rows:
        mark = "" if measured == expected else "   <- differs"
        agree = agree and measured == expected
        print(f"{name:<28}{measured:>9}{expected:>13}{mark}")
    window = counts["window"]
    print(
        f"window {window['start']} .. {window['end']}; simulated devices included "
        "(they never count unless a report asks for them)"
    )
    return agree


async def _wait_for_counts(
    client: httpx.AsyncClient, truth: dict[str, Any], within: float
) -> tuple[dict[str, Any], float]:
    """Poll the counts until they reach the fleet's truth or time runs out."""
    started = time.monotonic()
    counts: dict[str, Any] = {}
    params = {"window": "1h", "include_simulated": "true", "group_by": "industry"}
    while time.monotonic() - started < within:
        response = await client.get("/v1/counts", params=params)
        response.raise_for_status()
        counts = response.json()
        keys = ("connected_devices", "points")
        if all(counts[k] >= truth[k] for k in keys):
            break
        await asyncio.sleep(0.5)
    return counts, time.monotonic() - started


async def _probe_and_compare(
    service: CollectorService, client: httpx.AsyncClient, manifest: Any
) -> bool:
    """Run one manageability probe pass; compare managed devices with the writable ones."""
    writable = [d for d in manifest.devices if any(p.writable for p in d.points)]
    truth = (len(writable), len({d.type for d in writable if d.type}))
    ops = await service.probe.probe_all()
    verified = sum(op.verified for op in ops)
    params = {"window": "1h", "include_simulated": "true"}
    response = await client.get("/v1/counts", params=params)
    response.raise_for_status()
    counts = response.json()
    measured = (counts["managed_devices"], counts["managed_device_types"])
    print(
        f"\nmanageability probe (read, write the same value back, read again): "
        f"{len(ops)} device(s) probed, {verified} verified"
    )
    for name, got, expected in zip(
        ("managed_devices", "managed_device_types"), measured, truth, strict=True
    ):
        mark = "" if got == expected else "   <- differs"
        print(f"{name:<28}{got:>9}{expected:>13}{mark}   (fleet: devices with a writable point)")
    agree = measured == truth
    print(
        "managed devices agree with the fleet's writable devices"
        if agree
        else "managed devices do NOT agree with the fleet's writable devices",
        flush=True,
    )
    return agree


async def _register_enterprises(dsn: str, manifest: Any) -> None:
    """Record the fleet's enterprises (ground truth) so devices link to them."""
    from psycopg import AsyncConnection

    sites = {d.enterprise: d for d in manifest.devices if d.enterprise}
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        for name, device in sites.items():
            await conn.execute(
                "INSERT INTO enterprise (key, name, industry, region, park) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (name, name, device.industry, device.region, device.park),
            )


async def _create_key(dsn: str) -> str:
    from psycopg import AsyncConnection

    from api.auth import Role, create_key

    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        new, _ = await create_key(conn, Role.ADMIN, "demo")
    return new.token


async def demo(config: TallyConfig, fleet_path: Path, stop: asyncio.Event) -> int:
    """Run the demo until `stop` is set; return an exit code."""
    from api.app import create_app
    from api.settings import Settings
    from simulators.fleet import device_configs, load_fleet
    from simulators.runner import FleetSimulator

    await asyncio.to_thread(migrate, config.store.dsn, config.store.timescale)
    fleet = load_fleet(fleet_path)
    async with FleetSimulator(fleet) as manifest:
        print(f"fleet {fleet.name!r}: {len(manifest.devices)} simulated devices served", flush=True)
        truth = _ground_truth(manifest)
        await _register_enterprises(config.store.dsn, manifest)
        async with CollectorService(config, device_configs(manifest)) as service:
            token = await _create_key(config.store.dsn)
            api = ApiServer(
                create_app(Settings.from_config(config), control=service.control),
                config.api.host,
                config.api.port,
            )
            await api.start()
            try:
                print(
                    f"API       {api.url}   (OpenAPI: {api.url}/docs, metrics: {api.url}/metrics)"
                )
                print(f"demo key  {token}   (role admin; shown once)")
                print(
                    f"dashboard {api.url}/   (paste the demo key; tick 'include simulated' to "
                    "count the demo fleet)"
                )
                print(
                    f'try       curl -H "Authorization: Bearer {token}" '
                    f'"{api.url}/v1/counts?include_simulated=true&group_by=industry"',
                    flush=True,
                )
                headers = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
                    counts, took = await _wait_for_counts(client, truth, FIRST_COLLECTION_TIMEOUT)
                print(f"\nfirst collection counted after {took:.1f} s")
                agree = _print_comparison(counts, truth)
                print(
                    "\ncounts agree with the fleet's ground truth"
                    if agree
                    else "\ncounts do NOT agree with the fleet's ground truth yet",
                    flush=True,
                )
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
                    agree = await _probe_and_compare(service, client, manifest) and agree
                print("collecting; Ctrl-C stops everything", flush=True)
                await stop.wait()
            finally:
                await api.stop()
    print("stopped: simulators, collector and API", flush=True)
    return 0 if agree else 1


def run_demo(args: argparse.Namespace) -> int:
    """Start a throwaway PostgreSQL, run the demo, and remove everything on exit."""
    from collector.embedded.postgres import ThrowawayPostgres

    configure_logging("WARNING", "text")
    port = args.port if _port_free(args.port) else free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    cluster = ThrowawayPostgres(durable=False)
    print(f"starting a throwaway PostgreSQL in {cluster.base} ...", flush=True)
    try:
        cluster.start()
        config = parse_config(
            {
                "version": 1,
                "site": "demo",
                "data_dir": str(data_dir),
                "store": {"dsn": cluster.dsn},
                "api": {"host": "127.0.0.1", "port": port},
                "pipeline": {"batch_age": 0.5},
                "logging": {"level": "WARNING", "format": "text"},
            },
            "<demo defaults>",
        )

        async def main() -> int:
            stop = asyncio.Event()
            with stop_on_signals(stop):
                if args.duration is not None:
                    asyncio.get_running_loop().call_later(args.duration, stop.set)
                return await demo(config, args.fleet, stop)

        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        with contextlib.suppress(Exception):
            cluster.remove()
        shutil.rmtree(data_dir, ignore_errors=True)
        print("removed the throwaway PostgreSQL and data directory", file=sys.stderr, flush=True)
