"""The collector's Ed25519 report-signing key, kept in the data directory or given as a file.

By default the private key is a PKCS#8 PEM file with mode 0600 under
``<data_dir>/keys/``, created on first use. Creation is atomic (written aside, then
hard-linked into place), so two processes starting together end up with the same key.
A key given as a file (``api.signing_key``, shared by API replicas) is only read, never
created: a missing file is an error, not a new key. The
fingerprint is the SHA-256 of the public key's DER SubjectPublicKeyInfo, as
``openssl pkey -pubin -in public_key.pem -outform DER | sha256sum`` prints it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
KEY_FILE = Path("keys") / "report-signing-ed25519.pem"


class SigningKeyError(RuntimeError):
    """A signing key that cannot be read or created; the message says which file and why."""


@dataclass(frozen=True)
class SigningKey:
    """The private key and where it lives."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public_key_pem(self) -> bytes:
        """Return the public key as PEM (SubjectPublicKeyInfo)."""
        return public_pem(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        """Return the hex SHA-256 of the public key's DER encoding."""
        return fingerprint(self.private.public_key())

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of data."""
        return self.private.sign(data)


def public_pem(key: Ed25519PublicKey) -> bytes:
    """Return a public key as PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: Ed25519PublicKey) -> str:
    """Return the hex SHA-256 of a public key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def load_public_key(pem: bytes, origin: str) -> Ed25519PublicKey:
    """Parse an Ed25519 public key from PEM; SigningKeyError names origin when it is not one."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{origin}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{origin}: not an Ed25519 public key ({type(key).__name__})")
    return key


def verify_signature(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Tell whether signature is key's Ed25519 signature of data."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _read(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from None
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"{path} is not a readable PEM private key ({exc}); move it away to create a new "
            "key (reports signed with the old key then no longer verify with the new one)"
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(private).__name__}, not an Ed25519 key")
    return SigningKey(private, path)


def load_file(path: Path) -> SigningKey:
    """Return the signing key of a provisioned PEM file; a missing file is an error."""
    if not path.exists():
        raise SigningKeyError(
            f"the signing key {path} (api.signing_key) does not exist; create it once with "
            f"`openssl genpkey -algorithm ed25519 -out {path.name}` and give every API "
            "process the same file"
        )
    return _read(path)


def load_or_create(data_dir: Path) -> tuple[SigningKey, bool]:
    """Return the data directory's signing key and whether it was created just now."""
    path = data_dir / KEY_FILE
    if path.exists():
        return _read(path), False
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(aside, path)
        except FileExistsError:
            return _read(path), False  # another process created it first
        finally:
            aside.unlink(missing_ok=True)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot create the signing key in {path.parent}: {exc}; check data_dir"
        ) from None
    return SigningKey(private, path), True
