"""The report-signing key: created once in the data directory, private, reused, checked."""

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from collector.bundles import signing


def test_created_once_with_mode_0600_then_reused(tmp_path: Path) -> None:
    key, created = signing.load_or_create(tmp_path)
    again, created_again = signing.load_or_create(tmp_path)
    assert (created, created_again) == (True, False)
    assert key.fingerprint == again.fingerprint
    assert len(key.fingerprint) == 64
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key.path.parent).st_mode) == 0o700
    assert list(key.path.parent.iterdir()) == [key.path]  # nothing left aside


def test_signatures_verify_only_with_the_key_and_the_data(tmp_path: Path) -> None:
    key, _ = signing.load_or_create(tmp_path)
    public = signing.load_public_key(key.public_key_pem, "test")
    signature = key.sign(b"manifest")
    assert len(signature) == 64
    assert signing.verify_signature(public, signature, b"manifest")
    assert not signing.verify_signature(public, signature, b"manifesT")
    other, _ = signing.load_or_create(tmp_path / "other")
    assert not signing.verify_signature(
        signing.load_public_key(other.public_key_pem, "other"), signature, b"manifest"
    )


def test_a_damaged_key_file_is_reported_not_replaced(tmp_path: Path) -> None:
    key, _ = signing.load_or_create(tmp_path)
    key.path.write_bytes(b"not a key")
    with pytest.raises(signing.SigningKeyError, match="not a readable PEM private key"):
        signing.load_or_create(tmp_path)
    assert key.path.read_bytes() == b"not a key"


def test_a_public_key_that_is_not_ed25519_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(signing.SigningKeyError, match="not an Ed25519 public key"):
        signing.load_public_key(pem, "ec.pem")
    with pytest.raises(signing.SigningKeyError, match=r"garbage\.pem: not a PEM public key"):
        signing.load_public_key(b"garbage", "garbage.pem")


def test_an_unwritable_data_dir_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(signing.SigningKeyError, match="check data_dir"):
        signing.load_or_create(blocker)


def test_a_provisioned_key_file_is_read_and_a_missing_one_never_created(tmp_path: Path) -> None:
    made, _ = signing.load_or_create(tmp_path / "elsewhere")
    given = signing.load_file(made.path)
    assert (given.fingerprint, given.path) == (made.fingerprint, made.path)
    missing = tmp_path / "secrets" / "signing.pem"
    with pytest.raises(signing.SigningKeyError, match=r"does not exist; create it once with"):
        signing.load_file(missing)
    assert not missing.parent.exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
def test_a_key_made_by_openssl_loads_with_the_fingerprint_openssl_prints(tmp_path: Path) -> None:
    path = tmp_path / "site.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert signing.load_file(path).fingerprint == hashlib.sha256(der).hexdigest()
