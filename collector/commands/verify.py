"""`tally verify BUNDLE`: check a report bundle offline (signature, digests, verdicts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from collector.bundles.bundle import BundleError, read_zip
from collector.bundles.signing import SigningKeyError, load_public_key
from collector.bundles.verify import BundleVerdict, verify_bundle


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `verify`."""
    parser = sub.add_parser(
        "verify",
        help="verify a report bundle offline (exit 0 intact, 1 names the changed file)",
        description=(
            "Check a bundle from POST /v1/reports: the Ed25519 signature of manifest.json, "
            "the SHA-256 of every file, that no file is missing or extra, and that the "
            "evaluation re-run from the bundled rule set, snapshot and declarations gives "
            "the verdicts the report states. No database or network is needed."
        ),
    )
    parser.add_argument(
        "bundle", type=Path, help="the bundle (.zip) or a directory it was unzipped to"
    )
    parser.add_argument(
        "--public-key",
        type=Path,
        help="the collector's public key (PEM, from GET /v1/keys/signing); without it the "
        "bundled key is used, which proves integrity but not origin",
    )
    parser.set_defaults(handler=run_verify)


def _read_dir(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_bundle(path: Path) -> dict[str, bytes]:
    """Return a bundle's files from a zip or a directory; BundleError says what is wrong."""
    try:
        if path.is_dir():
            return _read_dir(path)
        return read_zip(path.read_bytes(), str(path))
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None


def _report(verdict: BundleVerdict, path: Path) -> int:
    fp = verdict.key_fingerprint or "-"
    if verdict.key_source == "given":
        print(f"key: the given public key (fingerprint {fp})")
    else:
        print(
            f"key: the bundled public_key.pem (fingerprint {fp}); this proves the bundle is "
            "intact, not who made it: compare the fingerprint with GET /v1/keys/signing or "
            "pass --public-key"
        )
    for note in verdict.notes:
        print(f"note: {note}")
    if verdict.ok:
        print(
            f"{path}: OK: signature valid, {verdict.files_checked} files match the manifest, "
            f"{verdict.rules_compared} rule verdicts re-evaluated identically"
        )
        return 0
    for problem in verdict.problems:
        print(f"tally verify: FAILED {problem.file}: {problem.reason}", file=sys.stderr)
    return 1


def run_verify(args: argparse.Namespace) -> int:
    """Verify the bundle and print what held; exit 1 naming the file that changed."""
    public_key = None
    if args.public_key is not None:
        try:
            public_key = load_public_key(args.public_key.read_bytes(), str(args.public_key))
        except OSError as exc:
            print(f"tally verify: cannot read {args.public_key}: {exc}", file=sys.stderr)
            return 1
        except SigningKeyError as exc:
            print(f"tally verify: {exc}", file=sys.stderr)
            return 1
    try:
        files = read_bundle(args.bundle)
    except BundleError as exc:
        print(f"tally verify: FAILED {exc}", file=sys.stderr)
        return 1
    return _report(verify_bundle(files, public_key), args.bundle)
