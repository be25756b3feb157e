"""Send a workload to Tally: over the HTTP API (URL + operator key) or straight into a store.

``python -m simulators.workload --spec FILE --api URL --key KEY --manifest OUT.json``
registers every record (bulk POST per resource) and posts the calls in batches;
``--dsn DSN`` does the same through the store functions. The manifest written is the
ground truth plus what the run observed (stored, duplicates, rejected, seconds). A
second run of the same spec stores nothing new: event ids and record keys are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from psycopg import AsyncConnection

from collector.store import registry
from collector.store.calls import CallIngest
from simulators.workload.generate import Workload, generate
from simulators.workload.spec import WorkloadError, load_spec

REGISTRY_CHUNK = 10_000


@dataclass(slots=True)
class RunResult:
    """What the receiving side reported for the calls sent."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0


class WorkloadRefused(RuntimeError):
    """The API refused part of the workload; the message carries its answer."""


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise WorkloadRefused(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


async def run_api(
    workload: Workload, url: str, key: str, *, concurrency: int = 2, request_timeout: float = 60.0
) -> RunResult:
    """Register the records and post the calls over HTTP; return what the API reported."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=request_timeout) as client:
        for resource, records in workload.registries():
            for i in range(0, len(records), REGISTRY_CHUNK):
                items = [r.model_dump(mode="json") for r in records[i : i + REGISTRY_CHUNK]]
                _check(await client.post(f"/v1/{resource}", json={"items": items}), resource)
        return await post_calls(client, workload.batches, concurrency=concurrency)


async def post_calls(
    client: httpx.AsyncClient, batches: Sequence[Sequence[dict[str, Any]]], *, concurrency: int = 2
) -> RunResult:
    """POST the batches to /v1/calls with `concurrency` requests in flight."""
    result = RunResult()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(json.dumps({"events": list(batch)}).encode())
    started = time.perf_counter()

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            answer = _check(
                await client.post(
                    "/v1/calls", content=body, headers={"Content-Type": "application/json"}
                ),
                "calls",
            )
            result.stored += answer["stored"]
            result.duplicates += answer["duplicates"]
            result.rejected += len(answer["rejected"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def run_dsn(workload: Workload, dsn: str) -> RunResult:
    """Register the records and ingest the calls through the store functions."""
    result = RunResult()
    ingest = CallIngest(workload.spec.zone, source="workload")
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        for resource, records in workload.registries():
            if records:
                body = json.dumps([r.model_dump(mode="json") for r in records], sort_keys=True)
                await registry.register_many(
                    conn,
                    "simulator:workload",
                    resource,
                    records,
                    source=f"workload {workload.spec.name}",
                    sha256=hashlib.sha256(body.encode()).hexdigest(),
                )
        started = time.perf_counter()
        for batch in workload.batches:
            answer = await ingest.ingest(conn, batch)
            result.stored += answer.stored
            result.duplicates += answer.duplicates
            result.rejected += len(answer.rejected)
        result.seconds = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run a workload from the command line and write its manifest."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.workload", description="Send a registry and call workload."
    )
    parser.add_argument("--spec", type=Path, required=True, help="workload spec (YAML)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--api", help="base URL of the Tally API, e.g. http://127.0.0.1:8080")
    target.add_argument("--dsn", help="connection string of a migrated Tally store")
    parser.add_argument("--key", default=os.environ.get("TALLY_API_KEY"), help="operator key")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight (--api)")
    parser.add_argument("--manifest", type=Path, help="write the ground truth here (JSON)")
    args = parser.parse_args(argv)
    try:
        workload = generate(load_spec(args.spec))
    except (WorkloadError, ValueError) as exc:
        print(f"workload: {exc}", file=sys.stderr)
        return 2
    if args.api and not args.key:
        print("workload: --api needs --key (or TALLY_API_KEY) of an operator", file=sys.stderr)
        return 2
    try:
        if args.api:
            result = asyncio.run(
                run_api(workload, args.api, args.key, concurrency=args.concurrency)
            )
        else:
            result = asyncio.run(run_dsn(workload, args.dsn))
    except (WorkloadRefused, httpx.HTTPError, OSError) as exc:
        print(f"workload: {exc}", file=sys.stderr)
        return 1
    manifest = dict(workload.manifest)
    manifest["run"] = asdict(result)
    if args.manifest:
        args.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), "utf-8")
    sent = manifest["calls"]["sent"]
    rate = result.stored / result.seconds if result.seconds else 0.0
    print(
        f"{sent['events']} events sent in {result.seconds:.1f} s: {result.stored} stored "
        f"({rate:,.0f}/s), {result.duplicates} already recorded, {result.rejected} rejected"
    )
    return 0
