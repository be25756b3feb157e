"""`tally verify`: unusable inputs are explained (API-made bundles: tests/api/test_reports.py)."""

from pathlib import Path

import pytest

from collector.cli import main


def test_not_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert main(["verify", str(path)]) == 1
    assert "not a zip archive" in capsys.readouterr().err


def test_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "missing.zip")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_unusable_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key.pem"
    key.write_text("garbage")
    assert main(["verify", str(tmp_path), "--public-key", str(key)]) == 1
    assert "not a PEM public key" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "--public-key", str(tmp_path / "nope.pem")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_an_empty_directory_is_no_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path)]) == 1
    assert "FAILED manifest.json: missing" in capsys.readouterr().err
