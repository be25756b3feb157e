"""A connection's TLS files are loaded when the configuration is; a bad one names itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from adapters.mqtt.tls_files import tls_files_problem
from collector.config import ConfigError, parse_config
from tests.adapters.mqtt.tls_pki import Issued, TestAuthority


@pytest.fixture
def pki(tmp_path: Path) -> tuple[TestAuthority, Issued, Issued]:
    ca = TestAuthority(tmp_path / "pki")
    return ca, ca.issue("a", "a", server=False), ca.issue("b", "b", server=False)


def test_good_files_load(pki: tuple[TestAuthority, Issued, Issued]) -> None:
    ca, a, _ = pki
    assert tls_files_problem(ca.ca_file, a.cert_file, a.key_file) is None
    assert tls_files_problem(ca.ca_file, None, None) is None
    assert tls_files_problem(None, None, None) is None


def test_each_bad_file_is_named(pki: tuple[TestAuthority, Issued, Issued], tmp_path: Path) -> None:
    ca, a, b = pki
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = tmp_path / "missing.pem"
    assert tls_files_problem(missing, None, None) == f"ca_file {missing}: no such file"
    assert tls_files_problem(tmp_path, None, None) == f"ca_file {tmp_path}: not a file"
    assert tls_files_problem(None, a.cert_file, missing) == f"key_file {missing}: no such file"
    assert tls_files_problem(junk, None, None) == (
        f"ca_file {junk}: not a PEM bundle of CA certificates (no certificate or crl found)"
    )
    assert tls_files_problem(ca.ca_file, a.cert_file, b.key_file) == (
        f"key_file {b.key_file} is not the private key of cert_file {a.cert_file}"
    )
    problem = tls_files_problem(None, junk, a.key_file)
    assert problem is not None and problem.startswith(f"cert_file {junk} with key_file")
    assert problem.endswith("both must be PEM, the key unencrypted")


def test_an_encrypted_key_is_refused_without_a_prompt(
    pki: tuple[TestAuthority, Issued, Issued], tmp_path: Path
) -> None:
    _, a, _ = pki
    key = serialization.load_pem_private_key(a.key_file.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    # In a child without a controlling terminal, where a pass phrase prompt would fail.
    code = (
        "import sys; from pathlib import Path; "
        "from adapters.mqtt.tls_files import tls_files_problem; "
        f"print(tls_files_problem(None, Path({str(a.cert_file)!r}), Path({str(encrypted)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert "the key unencrypted" in done.stdout


def test_a_bad_file_fails_the_configuration_with_its_key_path(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    device = {
        "id": "b",
        "protocol": "mqtt",
        "url": "mqtts://127.0.0.1:8883",
        "sparkplug": {},
        "tls": {"ca_file": str(missing)},
    }
    expected = f"devices[0].tls: Value error, ca_file {missing}: no such file"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_config({"version": 1, "devices": [device]}, "t.yaml", {})
