"""A throwaway certificate authority for TLS tests, and a Mosquitto that wants TLS and login."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.embedded.mosquitto import BrokerSecurity, ThrowawayMosquitto

USER, PASSWORD = "collector", "s3cret-pw"


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key as PEM files."""

    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tally tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return Issued(cert_file, key_file)


class TestAuthority:
    """A CA that writes its certificate and the ones it issues into `directory`."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "Tally test CA") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.stem = name.lower().replace(" ", "-")
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._subject = _name(name)
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._subject)
            .issuer_name(self._subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.issued = _write(directory, self.stem, self._cert, self._key)

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that peers trust."""
        return self.issued.cert_file

    def issue(self, stem: str, common_name: str, *, server: bool) -> Issued:
        """Issue a server certificate for 127.0.0.1/localhost, or a client certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256())
        return _write(self.directory, stem, cert, key)


@dataclass(frozen=True)
class Site:
    """A TLS broker that wants a client certificate and a password, and the PKI around it."""

    broker: ThrowawayMosquitto
    ca: TestAuthority
    client: Issued
    rogue: TestAuthority
    rogue_client: Issued

    def tls(self, **overrides: Any) -> dict[str, Any]:
        """Return the `tls:` section of a connection (overrides: other files, None to drop)."""
        files = {
            "ca_file": self.ca.ca_file,
            "cert_file": self.client.cert_file,
            "key_file": self.client.key_file,
        }
        files.update(overrides)
        return {k: str(v) for k, v in files.items() if v is not None}


@contextmanager
def secured_broker(pki: Path) -> Iterator[Site]:
    """Run a Mosquitto with TLS, a required client certificate and USER/PASSWORD only."""
    ca = TestAuthority(pki / "site")
    server = ca.issue("broker", "127.0.0.1", server=True)
    rogue = TestAuthority(pki / "rogue", "Rogue CA")
    security = BrokerSecurity(
        ca_file=ca.ca_file,
        cert_file=server.cert_file,
        key_file=server.key_file,
        require_certificate=True,
        passwords=((USER, PASSWORD),),
    )
    broker = ThrowawayMosquitto(security=security)
    broker.start()
    try:
        yield Site(
            broker,
            ca,
            ca.issue("collector", "collector", server=False),
            rogue,
            rogue.issue("stranger", "stranger", server=False),
        )
    finally:
        broker.remove()
