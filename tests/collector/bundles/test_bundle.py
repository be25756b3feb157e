"""Building bundles: manifest of every file, signature, deterministic zip, extra files hook."""

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.bundles import signing
from collector.bundles.bundle import BundleError, build_bundle, read_zip

AT = datetime(2024, 5, 3, 6, tzinfo=UTC)


@pytest.fixture
def key(tmp_path: Path) -> signing.SigningKey:
    return signing.load_or_create(tmp_path)[0]


def test_manifest_lists_every_file_with_its_digest(key: signing.SigningKey) -> None:
    files = {"report.json": b"{}", "drilldowns/devices.csv": b"id\r\n"}
    bundle = build_bundle(files, key, report_id="r1", created_at=AT)
    members = read_zip(bundle.data, "test")
    manifest = json.loads(members["manifest.json"])
    assert set(manifest["files"]) == {"report.json", "drilldowns/devices.csv", "public_key.pem"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256(members[name]).hexdigest()
        assert entry["bytes"] == len(members[name])
    sig = json.loads(members["manifest.sig"])
    assert sig["manifest_sha256"] == bundle.manifest_sha256
    assert (
        sig["key_fingerprint_sha256"]
        == key.fingerprint
        == manifest["signature"]["key_fingerprint_sha256"]
    )


def test_same_inputs_give_the_same_bytes(key: signing.SigningKey) -> None:
    files = {"b.txt": b"2", "a.txt": b"1"}
    one = build_bundle(files, key, report_id="r1", created_at=AT)
    two = build_bundle(dict(reversed(files.items())), key, report_id="r1", created_at=AT)
    assert one.data == two.data  # Ed25519 signatures are deterministic
    with zipfile.ZipFile(io.BytesIO(one.data)) as archive:
        names = archive.namelist()
    assert names == ["manifest.json", "manifest.sig", "public_key.pem", "a.txt", "b.txt"]


def test_extra_files_are_signed_like_the_others(key: signing.SigningKey) -> None:
    bundle = build_bundle(
        {"report.json": b"{}"},
        key,
        report_id="r1",
        created_at=AT,
        extra_files={"spot-checks/1.json": b'{"answered": 3}'},
    )
    manifest = json.loads(read_zip(bundle.data, "test")["manifest.json"])
    assert "spot-checks/1.json" in manifest["files"]


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({"../x": b""}, {}, "relative path"),
        ({"/etc/x": b""}, {}, "relative path"),
        ({"a//b": b""}, {}, "relative path"),
        ({"manifest.json": b""}, {}, "written by the bundle itself"),
        ({"a": b""}, {"a": b""}, "two files are named a"),
    ],
)
def test_bad_names_are_refused(
    key: signing.SigningKey, files: dict[str, bytes], extra: dict[str, bytes], message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        build_bundle(files, key, report_id="r1", created_at=AT, extra_files=extra)


def test_not_a_zip_is_reported() -> None:
    with pytest.raises(BundleError, match=r"x\.zip: not a zip archive"):
        read_zip(b"hello", "x.zip")
