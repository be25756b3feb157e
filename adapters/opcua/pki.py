"""The client's application certificate and the store of trusted server certificates.

Layout of the PKI directory:
    own/cert.der, own/key.pem   the client certificate, generated on first use and kept
    trusted/*.der|*.pem         trusted server certificates (pinned on first use in tofu mode)
    rejected/*.der              certificates that were refused, to inspect and move to trusted/
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.opcua.config import TrustMode

log = logging.getLogger(__name__)

CERT_VALIDITY = dt.timedelta(days=5 * 365)
RENEW_BEFORE = dt.timedelta(days=30)


class ServerNotTrusted(Exception):
    """The server presented a certificate that the trust configuration refuses."""


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """Paths and DER bytes of the client's application instance certificate."""

    cert_path: Path
    key_path: Path
    cert_der: bytes


def fingerprint(der: bytes) -> str:
    """Return the SHA-256 fingerprint of a DER certificate as colon-separated hex."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _usable(cert: x509.Certificate, application_uri: str) -> bool:
    if cert.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return application_uri in san.get_values_for_type(x509.UniformResourceIdentifier)


def _generate(application_uri: str, hostname: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Tally collector"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tally"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(application_uri), x509.DNSName(hostname)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


_locks_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}


def _lock_for(pki_dir: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(pki_dir.resolve(), threading.Lock())


def ensure_client_certificate(pki_dir: Path, application_uri: str) -> ClientCertificate:
    """Return the client certificate in pki_dir/own, generating it when missing or unusable.

    Connections of one collector share the PKI directory and may start together: one
    generates the certificate, the others wait for it and use the same one.
    """
    with _lock_for(pki_dir):
        return _ensure_client_certificate(pki_dir, application_uri)


def _ensure_client_certificate(pki_dir: Path, application_uri: str) -> ClientCertificate:
    own = pki_dir / "own"
    cert_path, key_path = own / "cert.der", own / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        der = cert_path.read_bytes()
        try:
            usable = _usable(x509.load_der_x509_certificate(der), application_uri)
        except ValueError:
            usable = False
        if usable:
            return ClientCertificate(cert_path, key_path, der)
        log.warning(
            "client certificate %s is expired, unreadable or lacks ApplicationUri %s; "
            "generating a new one",
            cert_path,
            application_uri,
        )
    own.mkdir(parents=True, exist_ok=True)
    cert, key = _generate(application_uri, socket.gethostname())
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_key = key_path.with_suffix(".tmp")
    tmp_key.write_bytes(key_bytes)
    tmp_key.chmod(0o600)
    tmp_key.replace(key_path)
    der = cert.public_bytes(serialization.Encoding.DER)
    tmp_cert = cert_path.with_suffix(".tmp")
    tmp_cert.write_bytes(der)
    tmp_cert.replace(cert_path)
    log.info(
        "generated client certificate %s (ApplicationUri %s, SHA-256 %s)",
        cert_path,
        application_uri,
        fingerprint(der),
    )
    return ClientCertificate(cert_path, key_path, der)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "server"


def _load_der(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        x509.load_der_x509_certificate(data)
        return data
    except (OSError, ValueError):
        log.warning("ignoring unreadable certificate %s in the trust list", path)
        return None


class TrustStore:
    """Decides whether a server certificate is trusted, and pins it on first use."""

    def __init__(self, pki_dir: Path, mode: TrustMode) -> None:
        self.mode = mode
        self.trusted_dir = pki_dir / "trusted"
        self.rejected_dir = pki_dir / "rejected"

    def describe(self) -> str:
        """Say in one sentence how server certificates are trusted (for the logs)."""
        if self.mode is TrustMode.TOFU:
            return (
                f"server certificates are trusted on first use and pinned in {self.trusted_dir}; "
                "a different certificate later is refused"
            )
        return f"only server certificates placed in {self.trusted_dir} are trusted"

    def _trusted(self) -> set[bytes]:
        if not self.trusted_dir.is_dir():
            return set()
        found = (_load_der(p) for p in sorted(self.trusted_dir.iterdir()) if p.is_file())
        return {der for der in found if der is not None}

    def check(self, endpoint: str, application_uri: str, cert_der: bytes) -> None:
        """Accept the certificate, pin it (tofu, first use), or raise ServerNotTrusted."""
        if cert_der in self._trusted():
            return
        pin = self.trusted_dir / f"{_slug(application_uri)}.der"
        if self.mode is TrustMode.TOFU and not pin.exists():
            self.trusted_dir.mkdir(parents=True, exist_ok=True)
            pin.write_bytes(cert_der)
            log.warning(
                "trusting %s (%s) on first use: pinned certificate SHA-256 %s in %s",
                endpoint,
                application_uri,
                fingerprint(cert_der),
                pin,
            )
            return
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        rejected = (
            self.rejected_dir
            / f"{_slug(application_uri)}-{fingerprint(cert_der)[:11].replace(':', '')}.der"
        )
        rejected.write_bytes(cert_der)
        if self.mode is TrustMode.TOFU:
            reason = (
                f"it differs from the certificate pinned in {pin} on first use; if the server's "
                f"certificate was replaced on purpose, delete {pin} or move {rejected} into "
                f"{self.trusted_dir}"
            )
        else:
            reason = (
                f"it is not in the trust list {self.trusted_dir}; to trust it, check the "
                f"fingerprint with the server's operator and move {rejected} into "
                f"{self.trusted_dir} (the adapter keeps retrying and then connects)"
            )
        raise ServerNotTrusted(
            f"OPC UA server {endpoint} ({application_uri}) presented certificate SHA-256 "
            f"{fingerprint(cert_der)}, refused: {reason}"
        )
