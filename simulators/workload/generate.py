"""Generate a workload from its spec, deterministically from the seed, with its ground truth.

Calls carry back-dated time stamps spread over the spec's calendar months (in the
spec's zone), so months of traffic are sent in minutes. Each month's first two calls
sit exactly on its edges (00:00:00 on the 1st and 23:59:59 on the last day, local
time), so month boundaries are always exercised. On top of the valid calls the
workload sends some of them twice and some invalid events; the manifest states what
the store must count: every valid call once, no duplicate, no invalid event.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.registry.models import (
    APP_KINDS,
    DOMAINS,
    AppRecord,
    DeveloperRecord,
    EnterpriseRecord,
    Record,
    Resource,
    SubscriptionRecord,
    UserRecord,
)
from simulators.workload.spec import WorkloadSpec

OUTCOMES = ("ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "error", "timeout")


@dataclass(frozen=True)
class Workload:
    """Records, events in send order (batched) and the ground truth."""

    spec: WorkloadSpec
    enterprises: list[EnterpriseRecord]
    developers: list[DeveloperRecord]
    users: list[UserRecord]
    apps: list[AppRecord]
    subscriptions: list[SubscriptionRecord]
    batches: list[list[dict[str, Any]]]
    manifest: dict[str, Any]

    def registries(self) -> list[tuple[Resource, Sequence[Record]]]:
        """Return (resource, records) in an order where references come first."""
        return [
            ("enterprises", self.enterprises),
            ("developers", self.developers),
            ("users", self.users),
            ("apps", self.apps),
            ("subscriptions", self.subscriptions),
        ]


def _month(label: str) -> date:
    year, month = label.split("-")
    return date(int(year), int(month), 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _start(month: date, zone: ZoneInfo) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=zone)


def _enterprises(spec: WorkloadSpec, rng: random.Random) -> list[EnterpriseRecord]:
    return [
        EnterpriseRecord(
            key=f"ent-{i:05d}",
            name=f"Enterprise {i}",
            kind=spec.enterprise_kinds[i % len(spec.enterprise_kinds)],
            industry=rng.choice(spec.industries),
            region=f"3201{rng.randrange(1, 20):02d}",
        )
        for i in range(spec.enterprises)
    ]


def _developers(spec: WorkloadSpec, rng: random.Random) -> list[DeveloperRecord]:
    third = round(spec.third_party_share * spec.developers)
    return [
        DeveloperRecord(
            key=f"dev-{i:05d}",
            name=f"Developer {i}",
            third_party=i < third,
            languages=tuple(
                rng.sample(spec.languages, rng.randint(1, min(2, len(spec.languages))))
            ),
        )
        for i in range(spec.developers)
    ]


def _users(
    spec: WorkloadSpec, rng: random.Random, ents: list[EnterpriseRecord]
) -> list[UserRecord]:
    return [
        UserRecord(
            key=f"user-{i:05d}",
            kind=spec.user_kinds[i % len(spec.user_kinds)],
            enterprise=rng.choice(ents).key if rng.random() < 0.5 else None,
        )
        for i in range(spec.users)
    ]


def _apps(spec: WorkloadSpec, rng: random.Random, devs: list[DeveloperRecord]) -> list[AppRecord]:
    apps: list[AppRecord] = []
    for kind in APP_KINDS:
        kind_spec = spec.kind(kind)
        for i in range(kind_spec.count):
            apps.append(
                AppRecord(
                    key=f"{kind.replace('_', '-')}-{i:04d}",
                    name=f"{kind} {i}",
                    kind=kind,
                    category=f"{kind}-cat-{i % kind_spec.categories}",
                    industry=rng.choice(spec.industries),
                    domain=rng.choice(DOMAINS),
                    provider=f"Provider {rng.randrange(10)}",
                    developer=rng.choice(devs).key
                    if kind == "dev_tool" or rng.random() < 0.5
                    else None,
                    cross_platform=rng.random() < spec.cross_platform_share,
                )
            )
    return apps


def _subscriptions(
    spec: WorkloadSpec,
    rng: random.Random,
    *,
    apps: list[AppRecord],
    ents: list[EnterpriseRecord],
    users: list[UserRecord],
    first: datetime,
) -> list[SubscriptionRecord]:
    ended = round(spec.ended_share * spec.subscriptions)
    subs: list[SubscriptionRecord] = []
    for i in range(spec.subscriptions):
        since = first - timedelta(days=rng.randint(3, 90), seconds=rng.randrange(86_400))
        by_user = bool(users) and rng.random() < 0.3
        subs.append(
            SubscriptionRecord(
                key=f"sub-{i:06d}",
                app=rng.choice(apps).key,
                enterprise=None if by_user else rng.choice(ents).key,
                user=rng.choice(users).key if by_user else None,
                subscribed_at=since,
                ended_at=since + timedelta(days=1) if i < ended else None,
            )
        )
    return subs


def _bad_event(i: int, month_start: datetime, app: str) -> dict[str, Any]:
    ts = (month_start + timedelta(days=1)).isoformat()
    variants: list[dict[str, Any]] = [
        {"id": f"bad-{i}", "ts": ts, "app": "no-such-app", "outcome": "ok"},
        {"id": f"bad-{i}", "ts": ts[:19], "app": app, "outcome": "ok"},  # no offset
        {"id": f"bad-{i}", "ts": ts, "app": app, "outcome": "maybe"},
        {"id": f"bad-{i}", "app": app, "outcome": "ok"},  # no ts
    ]
    return variants[i % len(variants)]


def generate(spec: WorkloadSpec) -> Workload:
    """Build the whole workload and its manifest from the spec."""
    rng = random.Random(spec.seed)
    zone = ZoneInfo(spec.zone)
    months = [_month(m) for m in spec.calls.months]
    first, end = _start(months[0], zone), _start(_next(months[-1]), zone)
    ents = _enterprises(spec, rng)
    devs = _developers(spec, rng)
    users = _users(spec, rng, ents)
    apps = _apps(spec, rng, devs)
    if not apps and spec.calls.per_month:
        raise ValueError("calls need at least one app in the spec")
    subs = _subscriptions(spec, rng, apps=apps, ents=ents, users=users, first=first) if apps else []

    events: list[dict[str, Any]] = []
    per: dict[str, Counter[tuple[str | None, str]]] = defaultdict(Counter)
    callers: dict[str, set[str]] = {"enterprise": set(), "dev_tool_developer": set()}
    serial = 0
    for month in months:
        start = _start(month, zone)
        seconds = int((_start(_next(month), zone) - start).total_seconds())
        label = f"{month.year:04d}-{month.month:02d}"
        for n in range(spec.calls.per_month):
            offset = 0 if n == 0 else seconds - 1 if n == 1 else rng.randrange(seconds)
            ts = (start + timedelta(seconds=offset)).isoformat()
            app = rng.choice(apps)
            event: dict[str, Any] = {
                "id": f"w{spec.seed}-{serial:08d}",
                "ts": ts,
                "app": app.key,
                "outcome": rng.choice(OUTCOMES),
                "duration_ms": round(rng.uniform(1, 500), 1),
            }
            serial += 1
            ent = rng.choice(ents).key
            event["enterprise"] = ent
            callers["enterprise"].add(ent)
            if users and rng.random() < 0.5:
                event["user"] = rng.choice(users).key
            if app.kind == "dev_tool" and rng.random() < spec.calls.dev_tool_developer_share:
                dev = rng.choice(devs).key
                event["developer"] = dev
                callers["dev_tool_developer"].add(dev)
            events.append(event)
            for group, key in (
                ("kind", app.kind),
                ("category", app.category),
                ("industry", app.industry),
                ("domain", app.domain),
                ("app", app.key),
            ):
                per[group][(key, label)] += 1

    duplicates = rng.sample(events, round(spec.calls.duplicate_share * len(events)))
    bad = [
        _bad_event(i, first, apps[0].key) for i in range(round(spec.calls.bad_share * len(events)))
    ]
    sent = events + [dict(e) for e in duplicates] + bad
    rng.shuffle(sent)
    size = spec.calls.batch_size
    batches = [sent[i : i + size] for i in range(0, len(sent), size)]
    manifest = _manifest(
        spec, ents=ents, devs=devs, users=users, apps=apps, subs=subs, per=per,
        callers=callers, first=first, end=end,
    )  # fmt: skip
    manifest["calls"]["sent"] = {
        "events": len(sent),
        "valid": len(events),
        "duplicates": len(duplicates),
        "invalid": len(bad),
        "batches": len(batches),
    }
    return Workload(spec, ents, devs, users, apps, subs, batches, manifest)


def _app_truth(apps: list[AppRecord]) -> dict[str, Any]:
    def counts(items: list[AppRecord]) -> dict[str, Any]:
        return {
            "total": len(items),
            "by_category": dict(Counter(a.category for a in items if a.category)),
            "by_industry": dict(Counter(a.industry for a in items if a.industry)),
            "by_domain": dict(Counter(a.domain for a in items if a.domain)),
        }

    out: dict[str, Any] = {}
    for kind in APP_KINDS:
        of_kind = [a for a in apps if a.kind == kind]
        out[kind] = {
            "registered": counts(of_kind),
            "cross_platform": counts([a for a in of_kind if a.cross_platform]),
        }
    return out


def _manifest(
    spec: WorkloadSpec,
    *,
    ents: list[EnterpriseRecord],
    devs: list[DeveloperRecord],
    users: list[UserRecord],
    apps: list[AppRecord],
    subs: list[SubscriptionRecord],
    per: dict[str, Counter[tuple[str | None, str]]],
    callers: dict[str, set[str]],
    first: datetime,
    end: datetime,
) -> dict[str, Any]:
    active = [s for s in subs if s.ended_at is None or s.ended_at > first]
    ent_kind = {e.key: e.kind for e in ents}
    user_kind = {u.key: u.kind for u in users}
    ent_industry = {e.key: e.industry for e in ents}
    sub_ents = {s.enterprise for s in active if s.enterprise}
    sub_users = {s.user for s in active if s.user}
    calls: dict[str, Any] = {"zone": spec.zone, "months": list(spec.calls.months)}
    for group, counter in per.items():
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for (key, month), count in counter.items():
            table[str(key)][month] = count
        calls[f"by_{group}"] = {k: dict(sorted(v.items())) for k, v in sorted(table.items())}
    months = len(spec.calls.months)
    calls["monthly_average_by_kind"] = {
        kind: sum(calls.get("by_kind", {}).get(kind, {}).values()) / months for kind in APP_KINDS
    }
    return {
        "workload": spec.name,
        "seed": spec.seed,
        "window": {"start": first.isoformat(), "end": end.isoformat()},
        "registries": {
            "enterprises": len(ents),
            "users": len(users),
            "developers": len(devs),
            "third_party_developers": sum(1 for d in devs if d.third_party),
            "languages": len({lang for d in devs for lang in d.languages}),
            "apps": _app_truth(apps),
        },
        "subscriptions": {
            "registered": len(subs),
            "active": len(active),
            "enterprises": len(sub_ents),
            "users": len(sub_users),
            "enterprises_by_kind": dict(Counter(ent_kind[e] for e in sub_ents)),
            "users_by_kind": dict(Counter(user_kind[u] for u in sub_users)),
        },
        "enterprise_users": {
            "total": len(callers["enterprise"]),
            "by_industry": dict(Counter(ent_industry[e] for e in callers["enterprise"])),
        },
        "dev_tool_developers": len(callers["dev_tool_developer"]),
        "calls": calls,
    }
