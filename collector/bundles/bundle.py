"""Build a signed bundle: files, a SHA-256 manifest of them, its Ed25519 signature, the key.

A bundle is a zip of:

- the content files the report builder gives (``report.json``, the rendered report,
  CSV drill-downs, the rule set) and any ``extra_files`` attached by other evidence
  (e.g. spot-check results), under relative names;
- ``public_key.pem``: the signing key's public half;
- ``manifest.json``: the SHA-256 and size of every file above;
- ``manifest.sig``: the Ed25519 signature of the exact bytes of ``manifest.json``, with
  the manifest's SHA-256 (so a verifier can tell a changed manifest from a changed
  signature) and the key's fingerprint.

The zip is deterministic for its inputs (sorted names, fixed timestamps and modes).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from collector.bundles.signing import ALGORITHM, SigningKey

BUNDLE_FORMAT = "tally-bundle/1"
SIGNATURE_FORMAT = "tally-signature/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
RESERVED = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})


class BundleError(ValueError):
    """A bundle that cannot be built or read; the message names the file."""


def sha256_hex(data: bytes) -> str:
    """Return the hex SHA-256 of data."""
    return hashlib.sha256(data).hexdigest()


def check_name(name: str) -> str:
    """Return a file name usable inside a bundle, or raise BundleError saying why not."""
    path = PurePosixPath(name)
    if (
        not name
        or name != str(path)
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in path.parts)
        or "\\" in name
    ):
        raise BundleError(f"bundle file name {name!r} must be a relative path without '..'")
    return name


@dataclass(frozen=True)
class Bundle:
    """A built bundle: the zip's bytes and the digests that identify it."""

    data: bytes
    manifest: bytes
    files: tuple[str, ...]

    @property
    def manifest_sha256(self) -> str:
        """Return the hex SHA-256 of manifest.json (what the signature covers)."""
        return sha256_hex(self.manifest)

    @property
    def sha256(self) -> str:
        """Return the hex SHA-256 of the zip."""
        return sha256_hex(self.data)


def manifest_bytes(
    files: Mapping[str, bytes], *, report_id: str, created_at: datetime, key: SigningKey
) -> bytes:
    """Return manifest.json: the SHA-256 and size of every file, canonical JSON."""
    body: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "report_id": report_id,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "digest": "sha256",
        "signature": {
            "algorithm": ALGORITHM,
            "file": SIGNATURE,
            "public_key": PUBLIC_KEY,
            "key_fingerprint_sha256": key.fingerprint,
        },
        "files": {
            name: {"sha256": sha256_hex(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }
    return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def signature_bytes(manifest: bytes, key: SigningKey) -> bytes:
    """Return manifest.sig: the Ed25519 signature of manifest.json and what it covers."""
    body = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "signed_file": MANIFEST,
        "manifest_sha256": sha256_hex(manifest),
        "key_fingerprint_sha256": key.fingerprint,
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def _zip(members: Mapping[str, bytes], created_at: datetime) -> bytes:
    stamp = created_at.astimezone(UTC)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buffer = io.BytesIO()
    order = [MANIFEST, SIGNATURE, PUBLIC_KEY, *sorted(set(members) - RESERVED)]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return buffer.getvalue()


def build_bundle(
    files: Mapping[str, bytes],
    key: SigningKey,
    *,
    report_id: str,
    created_at: datetime,
    extra_files: Mapping[str, bytes] | None = None,
) -> Bundle:
    """Sign files (and extra_files, e.g. spot-check results) into a bundle."""
    content: dict[str, bytes] = {}
    for source in (files, extra_files or {}):
        for name, data in source.items():
            check_name(name)
            if name in RESERVED:
                raise BundleError(f"{name} is written by the bundle itself; choose another name")
            if name in content:
                raise BundleError(f"two files are named {name}")
            content[name] = bytes(data)
    content[PUBLIC_KEY] = key.public_key_pem
    manifest = manifest_bytes(content, report_id=report_id, created_at=created_at, key=key)
    members = {**content, MANIFEST: manifest, SIGNATURE: signature_bytes(manifest, key)}
    return Bundle(_zip(members, created_at), manifest, tuple(sorted(members)))


def read_zip(data: bytes, origin: str) -> dict[str, bytes]:
    """Return the members of a bundle zip; BundleError names a member whose bytes are damaged."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{origin}: not a zip archive ({exc})") from None
    members: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            try:
                members[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as exc:
                raise BundleError(f"{info.filename}: damaged inside {origin} ({exc})") from None
    return members
