"""Verify a bundle offline: signature, every digest, no file missing or extra, same verdicts.

Attribution is exact for any one changed file: a changed manifest fails its recorded
SHA-256 in manifest.sig; a changed signature fails while the manifest still matches
its recorded SHA-256; a changed public key fails its digest in the (intact) manifest;
any other changed file fails its digest. The evaluation is then re-run with the pure
evaluator from the bundled rule set, snapshot and declarations, and every verdict
compared with the one the report states.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import criteria
from collector.bundles.bundle import (
    BUNDLE_FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    sha256_hex,
)
from collector.bundles.signing import (
    SigningKeyError,
    fingerprint,
    load_public_key,
    verify_signature,
)
from criteria.evidence import EvidenceError, read_evidence
from criteria.model import RuleSetError, parse_ruleset

REPORT = "report.json"


@dataclass(frozen=True)
class Problem:
    """One file that does not hold what was signed, and why."""

    file: str
    reason: str


@dataclass
class BundleVerdict:
    """What verification found."""

    key_source: str = ""
    key_fingerprint: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_checked: int = 0
    rules_compared: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether everything held."""
        return not self.problems

    def fail(self, file: str, reason: str) -> None:
        """Record a problem with one file."""
        self.problems.append(Problem(file, reason))


def _signature(files: dict[str, bytes], verdict: BundleVerdict) -> tuple[bytes, str] | None:
    """Return (signature, recorded manifest SHA-256) from manifest.sig, or None if unusable."""
    raw = files.get(SIGNATURE)
    if raw is None:
        verdict.fail(SIGNATURE, "missing: the bundle is not signed")
        return None
    try:
        body = json.loads(raw)
        signature = base64.b64decode(body["signature"], validate=True)
        recorded = str(body["manifest_sha256"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        verdict.fail(SIGNATURE, f"unreadable ({type(exc).__name__}: {exc}); it was changed")
        return None
    return signature, recorded


def _key(
    files: dict[str, bytes], given: Ed25519PublicKey | None, verdict: BundleVerdict
) -> Ed25519PublicKey | None:
    if given is not None:
        verdict.key_source = "given"
        verdict.key_fingerprint = fingerprint(given)
        return given
    verdict.key_source = "bundled"
    pem = files.get(PUBLIC_KEY)
    if pem is None:
        verdict.fail(PUBLIC_KEY, "missing, and no --public-key was given")
        return None
    try:
        key = load_public_key(pem, PUBLIC_KEY)
    except SigningKeyError as exc:
        verdict.fail(PUBLIC_KEY, f"{exc}; it was changed")
        return None
    verdict.key_fingerprint = fingerprint(key)
    return key


def _manifest_files(manifest: bytes, verdict: BundleVerdict) -> dict[str, str] | None:
    try:
        body = json.loads(manifest)
        if body.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"format is {body.get('format')!r}, expected {BUNDLE_FORMAT}")
        return {str(n): str(e["sha256"]) for n, e in body["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        verdict.fail(MANIFEST, f"unreadable ({exc})")
        return None


def verify_integrity(
    files: dict[str, bytes], public_key: Ed25519PublicKey | None, verdict: BundleVerdict
) -> bool:
    """Check the signature and every digest; return whether the content can be trusted."""
    manifest = files.get(MANIFEST)
    if manifest is None:
        verdict.fail(MANIFEST, "missing: nothing says what the bundle holds")
        return False
    signed = _signature(files, verdict)
    key = _key(files, public_key, verdict)
    listed = _manifest_files(manifest, verdict) if signed is not None else None
    if signed is None:
        return False
    signature, recorded = signed
    manifest_intact = sha256_hex(manifest) == recorded
    if key is None:
        return False
    if verify_signature(key, signature, manifest):
        if not manifest_intact:
            verdict.fail(SIGNATURE, "its recorded manifest_sha256 was changed")
    elif not manifest_intact:
        verdict.fail(MANIFEST, "changed: its SHA-256 is not the one signed")
        return False
    elif (
        verdict.key_source == "bundled"
        and listed is not None
        and (PUBLIC_KEY in listed and sha256_hex(files.get(PUBLIC_KEY, b"")) != listed[PUBLIC_KEY])
    ):
        verdict.fail(PUBLIC_KEY, "changed: its SHA-256 differs from the manifest's")
        return False
    elif verdict.key_source == "given":
        verdict.fail(
            SIGNATURE,
            "does not verify with the given public key: the bundle was not signed by that key, "
            "or manifest.sig was changed",
        )
        return False
    else:
        verdict.fail(SIGNATURE, "changed: the signature does not verify manifest.json")
        return False
    if listed is None:
        return False
    for name in sorted(listed):
        if name not in files:
            verdict.fail(name, "missing: listed in the manifest but not in the bundle")
        elif sha256_hex(files[name]) != listed[name]:
            verdict.fail(name, "changed: its SHA-256 differs from the manifest's")
        verdict.files_checked += 1
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        verdict.fail(name, "extra: in the bundle but not in the signed manifest")
    return verdict.ok


def _bundled_ruleset(files: dict[str, bytes], report: dict[str, Any]) -> criteria.RuleSet:
    name = str(report.get("bundle", {}).get("ruleset_file") or "")
    if name not in files:
        raise ValueError(f"the rule set file {name!r} named by report.json is not in the bundle")
    try:
        return parse_ruleset(yaml.safe_load(files[name].decode("utf-8")), name)
    except (RuleSetError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def reevaluate(files: dict[str, bytes], verdict: BundleVerdict) -> None:
    """Re-run the evaluation from the bundled inputs and compare every verdict."""
    raw = files.get(REPORT)
    if raw is None:
        verdict.fail(REPORT, "missing")
        return
    try:
        report = json.loads(raw)
        saved = read_evidence(raw.decode("utf-8"), REPORT)
        ruleset = _bundled_ruleset(files, report)
        tier = str(report["tier"])
        stated = report["evaluation"]
    except (ValueError, KeyError, TypeError, EvidenceError) as exc:
        verdict.fail(REPORT, f"cannot be re-evaluated: {exc}")
        return
    again = criteria.evaluate(ruleset, saved.snapshot, saved.declarations, tier)
    if again.verdict != stated.get("verdict"):
        verdict.fail(
            REPORT,
            f"re-evaluation gives the verdict {again.verdict}, the report states "
            f"{stated.get('verdict')}",
        )
    by_rule = {r.get("rule"): r for r in stated.get("results", [])}
    if set(by_rule) != {r.rule for r in again.results}:
        verdict.fail(REPORT, "the report's rules are not the rules of the bundled rule set")
    for result in again.results:
        mine = by_rule.get(result.rule, {})
        theirs = (mine.get("verdict"), mine.get("measured"), mine.get("threshold"))
        if (result.verdict, result.measured, result.threshold) != theirs:
            verdict.fail(
                REPORT,
                f"rule {result.rule}: re-evaluation gives {result.verdict} "
                f"(measured {result.measured}), the report states {theirs[0]} "
                f"(measured {theirs[1]})",
            )
        verdict.rules_compared += 1
    programme = ruleset.programme.id
    if programme in criteria.list_programs() and criteria.load_ruleset(programme) != ruleset:
        verdict.notes.append(
            f"the bundled rule set of {programme} differs from the one installed here; the "
            "bundled one was used"
        )


def verify_bundle(files: dict[str, bytes], public_key: Ed25519PublicKey | None) -> BundleVerdict:
    """Verify a bundle's members (read from a zip or a directory)."""
    verdict = BundleVerdict()
    if verify_integrity(files, public_key, verdict):
        reevaluate(files, verdict)
    return verdict
