"""Freeze an evaluation into a signed report bundle and store it.

The evaluation, every drill-down list behind its figures and the declarations are
read in one repeatable-read view, so the CSV totals are the evaluated figures. The
bundle holds ``report.json`` (the evaluation answer with its snapshot, declarations,
definitions, software version, window and include_simulated, plus which CSV explains
which rule), ``report.md`` and ``report.html``, the rule set it was evaluated against
(``rules/<programme>.yaml``), ``drilldowns/*.csv`` and any ``extra_files``; see
collector/bundles/bundle.py for the manifest and signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg import AsyncConnection

import criteria
from api import drilldown_links
from api.csv_export import apps_csv, devices_csv, points_csv
from api.drilldown_links import Drilldown
from api.evaluating import evaluate_in
from api.routes.drilldowns import APPS_DEFINITION, DEVICES_DEFINITION, POINTS_DEFINITION
from api.schemas_drilldowns import DrillAppOut, DrillDeviceOut, DrillPointOut
from api.settings import Settings
from api.window import Window
from collector import __version__
from collector.bundles import signing
from collector.bundles.bundle import Bundle, build_bundle, sha256_hex
from collector.store import audit, drilldowns, queries, reports
from collector.store.calls import recorded_zone
from criteria.report import build_report, render


def signing_key_problem(settings: Settings) -> str | None:
    """Return why the provisioned signing key cannot be used (None when usable or unset)."""
    if settings.signing_key is None:
        return None
    try:
        signing.load_file(settings.signing_key)
    except signing.SigningKeyError as exc:
        return str(exc)
    return None


async def signing_key(
    conn: AsyncConnection[Any], settings: Settings, actor: str
) -> signing.SigningKey:
    """Return the configured signing key, or the data directory's (created and audited if new)."""
    if settings.signing_key is not None:
        return signing.load_file(settings.signing_key)
    key, created = signing.load_or_create(settings.data_dir)
    if created:
        await audit.append(
            conn,
            actor,
            "signing_key.created",
            f"signing-key/{key.fingerprint[:16]}",
            {
                "algorithm": signing.ALGORITHM,
                "fingerprint_sha256": key.fingerprint,
                "path": str(key.path),
            },
        )
    return key


async def list_csv(
    conn: AsyncConnection[Any], drilldown: Drilldown, window: Window, zone: str
) -> bytes:
    """Return every row of one drill-down list as CSV."""
    start, end = window.start, window.end
    if drilldown.name == "apps":
        assert drilldown.apps is not None
        _, months, app_rows = await drilldowns.apps(
            conn, start, end, zone, drilldown.apps, limit=None
        )
        return apps_csv([DrillAppOut.of(r) for r in app_rows], months).encode()
    assert drilldown.devices is not None
    if drilldown.name == "points":
        _, point_rows = await drilldowns.points(conn, start, end, drilldown.devices, limit=None)
        return points_csv([DrillPointOut.of(r) for r in point_rows]).encode()
    _, device_rows = await drilldowns.devices(conn, start, end, drilldown.devices, limit=None)
    return devices_csv([DrillDeviceOut.of(r) for r in device_rows]).encode()


@dataclass(frozen=True)
class MadeReport:
    """A stored report and its bundle."""

    row: reports.ReportRow
    bundle: Bundle


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


async def make_report(
    conn: AsyncConnection[Any],
    *,
    settings: Settings,
    ruleset: criteria.RuleSet,
    tier: criteria.Tier,
    window: Window,
    include_simulated: bool,
    now: datetime,
    actor: str,
    extra_files: Mapping[str, bytes] | None = None,
) -> MadeReport:
    """Evaluate, export every list, sign the bundle, store it and audit it."""
    key = await signing_key(conn, settings, actor)
    report_id: UUID = uuid4()
    programme = ruleset.programme.id
    async with queries.snapshot(conn):
        out, evidence = await evaluate_in(
            conn,
            settings=settings,
            ruleset=ruleset,
            tier=tier,
            window=window,
            include_simulated=include_simulated,
            now=now,
        )
        zone = await recorded_zone(conn) or settings.timezone
        lists = drilldown_links.by_rule(ruleset, tier, evidence.declarations, include_simulated)
        csvs: dict[str, bytes] = {}
        for figures in lists.values():
            for figure in figures:
                name = figure.drilldown.filename()
                if name not in csvs:
                    csvs[name] = await list_csv(conn, figure.drilldown, window, zone)
    rules_file = f"rules/{programme}.yaml"
    rules_bytes = (criteria.rules_dir() / f"{programme}.yaml").read_bytes()
    report_json = out.model_dump(mode="json") | {
        "bundle": {
            "report_id": str(report_id),
            "created_at": now.isoformat(),
            "created_by": actor,
            "software_version": __version__,
            "window": {
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "spec": window.spec,
            },
            "include_simulated": include_simulated,
            "ruleset_file": rules_file,
            "ruleset_sha256": sha256_hex(rules_bytes),
            "drilldown_definitions": {
                "devices": DEVICES_DEFINITION,
                "points": POINTS_DEFINITION,
                "apps": APPS_DEFINITION,
            },
            "drilldowns": {
                rule: [
                    {
                        "metric": f.metric,
                        "file": f.drilldown.filename(),
                        "url": f.drilldown.url(window.start, window.end),
                    }
                    for f in figures
                ]
                for rule, figures in lists.items()
            },
            "verify": "tally verify BUNDLE.zip [--public-key KEY.pem] (GET /v1/keys/signing)",
        }
    }
    rendered = build_report(
        out.evaluation,
        out.snapshot,
        out.declarations,
        software_version=__version__,
        generated_at=now,
    )
    files = {
        "report.json": _json(report_json),
        "report.md": render(rendered, "md", "both").encode(),
        "report.html": render(rendered, "html", "both").encode(),
        rules_file: rules_bytes,
        **csvs,
    }
    bundle = build_bundle(
        files, key, report_id=str(report_id), created_at=now, extra_files=extra_files
    )
    row = reports.ReportRow(
        id=report_id,
        created_at=now,
        created_by=actor,
        programme=programme,
        tier=tier.id,
        window_start=window.start,
        window_end=window.end,
        window_spec=window.spec,
        include_simulated=include_simulated,
        verdict=out.verdict,
        manifest_sha256=bundle.manifest_sha256,
        key_fingerprint=key.fingerprint,
        bundle_sha256=bundle.sha256,
    )
    await reports.insert(conn, row, bundle.data)
    return MadeReport(row, bundle)
