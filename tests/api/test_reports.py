"""POST /v1/reports: a bundle made through the API verifies offline, and any changed byte fails."""

import asyncio
import csv
import hashlib
import io
import json
import os
import stat
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import criteria
from api import drilldown_links
from api.auth import Role
from collector.cli import main
from collector.store import audit
from tests.api.apitest import Seed, api_client, bearer, build_fleet, role_keys, utc
from tests.conftest import TEMPLATE_DB, PostgresServer

pytestmark = pytest.mark.integration

NOW = utc(2024, 5, 3, 5, 10)
PROGRAM, TIER = "jiangsu-2018", "enterprise"
BODY = {"program": PROGRAM, "tier": TIER, "window": "48h", "include_simulated": False}


def seed_fleet(dsn: str) -> None:
    s = Seed(dsn)
    try:
        ids = build_fleet(s)
        s.conn.execute(
            "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
            " VALUES (%s, 'probe', 'test', '2024-05-02T03:00:00Z', 'verified')",
            (ids["a-reactor"],),
        )
    finally:
        s.close()


@dataclass(frozen=True)
class Made:
    dsn: str
    data_dir: Path
    created: dict[str, Any]
    bundle: bytes
    again: bytes
    signing: dict[str, Any]
    evaluation: dict[str, Any]


async def _make(dsn: str, data_dir: Path) -> Made:
    key = (await role_keys(dsn))[Role.AUDITOR]
    async with api_client(dsn, now=NOW, data_dir=data_dir) as (client, _):
        created = await client.post("/v1/reports", json=BODY, headers=bearer(key))
        assert created.status_code == 201, created.text
        body = created.json()
        first = await client.get(body["bundle_url"], headers=bearer(key))
        second = await client.get(body["bundle_url"], headers=bearer(key))
        signing = await client.get("/v1/keys/signing", headers=bearer(key))
        evaluation = await client.get(
            f"/v1/programs/{PROGRAM}/tiers/{TIER}/evaluation",
            params={"window": "48h"},
            headers=bearer(key),
        )
    assert first.headers["content-type"] == "application/zip"
    return Made(
        dsn, data_dir, body, first.content, second.content, signing.json(), evaluation.json()
    )


@pytest.fixture(scope="module")
def made(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Made]:
    """One report made through the API on a database of this module's own."""
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    dsn = postgres_server.database_dsn(name)
    try:
        seed_fleet(dsn)
        yield asyncio.run(_make(dsn, tmp_path_factory.mktemp("data")))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def rezip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def verify(tmp_path: Path, data: bytes, *extra: str) -> int:
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    return main(["verify", str(path), *extra])


def test_report_is_created_stored_and_downloads_byte_for_byte(made: Made) -> None:
    body = made.created
    assert (body["programme"], body["tier"]) == (PROGRAM, TIER)
    assert body["bundle_url"] == f"/v1/reports/{body['id']}/bundle"
    assert body["verdict"] == made.evaluation["verdict"]
    assert made.bundle == made.again
    assert hashlib.sha256(made.bundle).hexdigest() == body["bundle_sha256"]
    files = members(made.bundle)
    assert hashlib.sha256(files["manifest.json"]).hexdigest() == body["manifest_sha256"]
    assert files["public_key.pem"].decode() == made.signing["public_key_pem"]
    assert body["key_fingerprint"] == made.signing["fingerprint_sha256"]
    assert made.signing["algorithm"] == "Ed25519"
    key_file = made.data_dir / "keys" / "report-signing-ed25519.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_bundle_verifies_with_the_bundled_and_with_the_published_key(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(tmp_path, made.bundle) == 0
    out = capsys.readouterr().out
    assert "bundled public_key.pem" in out and "not who made it" in out
    assert "OK" in out and "re-evaluated identically" in out
    published = tmp_path / "collector.pem"
    published.write_text(made.signing["public_key_pem"])
    assert verify(tmp_path, made.bundle, "--public-key", str(published)) == 0
    assert "the given public key" in capsys.readouterr().out


def test_a_key_that_did_not_sign_it_is_refused(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from collector.bundles.signing import public_pem

    other = tmp_path / "other.pem"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    assert verify(tmp_path, made.bundle, "--public-key", str(other)) == 1
    assert "FAILED manifest.sig" in capsys.readouterr().err


def bundle_files() -> list[str]:
    """Every file a bundle of PROGRAM/TIER holds, known before any bundle is made."""
    ruleset = criteria.load_ruleset(PROGRAM)
    lists = drilldown_links.by_rule(ruleset, ruleset.tier(TIER), (), False)
    csvs = {f.drilldown.filename() for found in lists.values() for f in found}
    fixed = ["report.json", "report.md", "report.html", f"rules/{PROGRAM}.yaml"]
    return [*fixed, *sorted(csvs), "public_key.pem", "manifest.json", "manifest.sig"]


def test_the_bundle_holds_exactly_the_expected_files(made: Made) -> None:
    assert sorted(members(made.bundle)) == sorted(bundle_files())


@pytest.mark.parametrize("name", bundle_files())
def test_one_flipped_byte_fails_naming_the_file(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    files = members(made.bundle)
    data = bytearray(files[name])
    data[len(data) // 2] ^= 0x01
    files[name] = bytes(data)
    assert verify(tmp_path, rezip(files)) == 1
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith(f"tally verify: FAILED {name}:"), err


def test_a_flipped_signature_byte_fails_naming_the_signature(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    files = members(made.bundle)
    sig = json.loads(files["manifest.sig"])
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[0] ^= 0x80
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    files["manifest.sig"] = json.dumps(sig).encode()
    assert verify(tmp_path, rezip(files)) == 1
    assert "FAILED manifest.sig: changed" in capsys.readouterr().err


def test_a_flipped_byte_in_the_zip_itself_names_the_member(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with zipfile.ZipFile(io.BytesIO(made.bundle)) as archive:
        info = archive.getinfo("report.json")
    data = bytearray(made.bundle)
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x01
    assert verify(tmp_path, bytes(data)) == 1
    assert "FAILED report.json" in capsys.readouterr().err


def test_a_missing_or_extra_file_fails_naming_it(
    made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = members(made.bundle)
    del files["report.md"]
    assert verify(tmp_path, rezip(files)) == 1
    assert "FAILED report.md: missing" in capsys.readouterr().err
    files = members(made.bundle) | {"notes.txt": b"trust me"}
    assert verify(tmp_path, rezip(files)) == 1
    assert "FAILED notes.txt: extra" in capsys.readouterr().err


def test_an_unzipped_bundle_verifies_too(made: Made, tmp_path: Path) -> None:
    root = tmp_path / "unzipped"
    for name, data in members(made.bundle).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    assert main(["verify", str(root)]) == 0


def test_re_evaluation_from_the_bundle_gives_identical_verdicts(made: Made) -> None:
    files = members(made.bundle)
    report = json.loads(files["report.json"])
    ruleset = criteria.load_ruleset(PROGRAM)
    snapshot = criteria.MetricsSnapshot.model_validate(report["snapshot"])
    declarations = [criteria.Declaration.model_validate(d) for d in report["declarations"]]
    again = criteria.evaluate(ruleset, snapshot, declarations, TIER)
    stated = {r["rule"]: r["verdict"] for r in report["evaluation"]["results"]}
    assert {r.rule: r.verdict for r in again.results} == stated
    assert again.verdict == report["verdict"] == made.created["verdict"]
    live = {r["rule"]: r["verdict"] for r in made.evaluation["evaluation"]["results"]}
    assert live == stated  # the live evaluation of the same window agrees
    assert report["bundle"]["software_version"] and report["include_simulated"] is False
    assert report["evaluation"]["definitions"] and report["snapshot"]["definitions"]


def test_bundled_csv_totals_equal_the_evaluated_figures(made: Made) -> None:
    files = members(made.bundle)
    report = json.loads(files["report.json"])
    snap = report["snapshot"]
    by_metric: dict[str, str] = {}
    for found in report["bundle"]["drilldowns"].values():
        for figure in found:
            by_metric.setdefault(figure["metric"], figure["file"])
            assert figure["file"] in files

    def rows(metric: str) -> list[dict[str, str]]:
        text = files[by_metric[metric]].decode()
        return list(csv.DictReader(io.StringIO(text, newline="")))

    connected = [
        f for f in report["bundle"]["drilldowns"]["js-enterprise-connections"]
        if f["metric"] == "connected_devices"
    ]  # fmt: skip
    table = list(csv.DictReader(io.StringIO(files[connected[0]["file"]].decode(), newline="")))
    assert "industry_class-discrete" in connected[0]["file"]
    assert {r["key"] for r in table} == {"b-lathe"}  # the only discrete (C34) device
    managed = rows("managed_devices")
    assert len(managed) == snap["managed_devices"]["total"] == 1
    assert {r["key"] for r in managed} == {"a-reactor"}
    compared = 0
    for result in report["evaluation"]["results"]:
        found = report["bundle"]["drilldowns"][result["rule"]]
        for node in threshold_nodes(result["check"]):
            same = [f for f in found if f["metric"] == node["metric"]]
            if len(same) != 1 or node["measured"] is None or node["unit"] == "%":
                continue
            table = list(csv.DictReader(io.StringIO(files[same[0]["file"]].decode(), newline="")))
            if node["metric"].endswith("device_types"):
                assert (
                    len({r["device_type"] for r in table if r["device_type"]}) == node["measured"]
                )
            else:
                assert len(table) == node["measured"], (result["rule"], same[0]["file"])
            compared += 1
    assert compared >= 2  # connected devices (discrete), process points, managed devices


def threshold_nodes(check: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every threshold of a check tree except those inside groups."""
    if check["kind"] == "threshold":
        yield check
    for child in check["children"]:
        yield from threshold_nodes(child)


async def test_report_creation_and_key_creation_are_audited(made: Made) -> None:
    async with await psycopg.AsyncConnection.connect(made.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT action, subject, payload FROM audit_log ORDER BY seq")
        entries = await cur.fetchall()
        chain = await audit.verify(conn)
    actions = [a for a, _, _ in entries]
    assert actions.count("signing_key.created") == 1
    report = next(p for a, s, p in entries if a == "report.created")
    assert report["manifest_sha256"] == made.created["manifest_sha256"]
    assert actions.index("signing_key.created") < actions.index("report.created")
    assert chain.ok


async def test_reports_list_and_describe(made: Made) -> None:
    key = (await role_keys(made.dsn))[Role.AUDITOR]
    async with api_client(made.dsn, now=NOW, data_dir=made.data_dir) as (client, _):
        listed = await client.get("/v1/reports", headers=bearer(key))
        one = await client.get(f"/v1/reports/{made.created['id']}", headers=bearer(key))
        missing = await client.get(f"/v1/reports/{uuid.uuid4()}", headers=bearer(key))
        gone = await client.get(f"/v1/reports/{uuid.uuid4()}/bundle", headers=bearer(key))
    assert listed.status_code == 200
    assert made.created["id"] in [r["id"] for r in listed.json()["items"]]
    assert one.json() == made.created
    assert (missing.status_code, gone.status_code) == (404, 404)


async def test_roles_bad_programmes_and_windows(database_url: str, tmp_path: Path) -> None:
    seed_fleet(database_url)
    keys = await role_keys(database_url)
    async with api_client(database_url, now=NOW, data_dir=tmp_path) as (client, _):
        for path in ("/v1/reports", "/v1/keys/signing"):
            assert (await client.get(path)).status_code == 401
            bad = await client.get(path, headers=bearer("tly_00000000_nope"))
            assert bad.status_code == 401
        assert (await client.post("/v1/reports", json=BODY)).status_code == 401
        for role in Role:
            made = await client.post("/v1/reports", json=BODY, headers=bearer(keys[role]))
            assert made.status_code == 201, (role, made.text)
            fetched = await client.get(made.json()["bundle_url"], headers=bearer(keys[role]))
            assert fetched.status_code == 200
        auditor = bearer(keys[Role.AUDITOR])
        unknown = await client.post("/v1/reports", json=BODY | {"tier": "gold"}, headers=auditor)
        window = await client.post(
            "/v1/reports", json=BODY | {"window": "a month"}, headers=auditor
        )
        listed = await client.get("/v1/reports", params={"limit": 2}, headers=auditor)
    assert unknown.status_code == 404 and "enterprise" in unknown.json()["detail"]
    assert window.status_code == 422 and "30d" in window.text
    assert (listed.json()["total"], len(listed.json()["items"])) == (3, 2)
    # Three reports, one key: created once, and kept.
    fingerprints = {r["key_fingerprint"] for r in listed.json()["items"]}
    assert len(fingerprints) == 1


def write_key_file(path: Path) -> str:
    """Write an Ed25519 PKCS#8 PEM as `openssl genpkey` does; return its fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from collector.bundles import signing

    private = Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return signing.fingerprint(private.public_key())


async def test_replicas_given_one_key_file_sign_with_it_and_create_none(
    database_url: str, tmp_path: Path
) -> None:
    seed_fleet(database_url)
    key_file = tmp_path / "report-signing-ed25519.pem"
    expected = write_key_file(key_file)
    auditor = bearer((await role_keys(database_url))[Role.AUDITOR])
    fingerprints = set()
    for replica in ("a", "b"):  # two API processes, each with its own data directory
        data_dir = tmp_path / replica
        replica_api = api_client(database_url, now=NOW, data_dir=data_dir, signing_key=key_file)
        async with replica_api as (client, _):
            made = await client.post("/v1/reports", json=BODY, headers=auditor)
            published = await client.get("/v1/keys/signing", headers=auditor)
        assert made.status_code == 201, made.text
        fingerprints |= {made.json()["key_fingerprint"], published.json()["fingerprint_sha256"]}
        assert not (data_dir / "keys").exists()
    assert fingerprints == {expected}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT action FROM audit_log")
        actions = [a for (a,) in await cur.fetchall()]
    assert "report.created" in actions and "signing_key.created" not in actions


async def test_a_missing_key_file_is_an_error_and_no_key_is_made(
    database_url: str, tmp_path: Path
) -> None:
    seed_fleet(database_url)
    missing = tmp_path / "secrets" / "signing.pem"
    auditor = bearer((await role_keys(database_url))[Role.AUDITOR])
    async with api_client(
        database_url, now=NOW, data_dir=tmp_path / "data", signing_key=missing
    ) as (client, _):
        made = await client.post("/v1/reports", json=BODY, headers=auditor)
        published = await client.get("/v1/keys/signing", headers=auditor)
        listed = await client.get("/v1/reports", headers=auditor)
    for answer in (made, published):
        assert answer.status_code == 500
        assert f"{missing} (api.signing_key) does not exist" in answer.json()["detail"]
        assert "openssl genpkey -algorithm ed25519" in answer.json()["detail"]
    assert listed.json()["total"] == 0
    assert not missing.exists() and not (tmp_path / "data" / "keys").exists()
