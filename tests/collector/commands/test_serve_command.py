"""`tally serve -c tally.yaml` as a real process: migrates, listens, answers, stops on SIGINT."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from collector.cli import main
from collector.embedded.ports import free_port
from tests.conftest import PostgresServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """Create a database with no schema at all; drop it afterwards."""
    name = f"tally_serve_{uuid.uuid4().hex[:10]}"
    admin = postgres_server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.database_dsn(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"tally serve exited early with {proc.returncode}"
        try:
            return httpx.get(f"{url}/v1/health", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"tally serve did not answer at {url} within {timeout} s")


@pytest.mark.timeout(90)
def test_serve_migrates_listens_on_the_configured_port_and_stops_cleanly(
    empty_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config = tmp_path / "tally.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "store": {"dsn": empty_database},
                "api": {"host": "127.0.0.1", "port": port},
                "logging": {"level": "WARNING"},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "serve", "-c", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_healthy(url, proc, timeout=30)
        assert health.status_code == 200 and health.json()["store"] == "up"

        # Migrations ran at start, so keys can be created and used at once.
        assert main(["keys", "create", "--role", "auditor", "-c", str(config)]) == 0
        key = capsys.readouterr().out.strip()
        headers = {"Authorization": f"Bearer {key}"}
        counts = httpx.get(f"{url}/v1/counts?window=7d", headers=headers, timeout=5)
        assert counts.status_code == 200
        assert counts.json()["window"]["hours"] == 168
        assert httpx.get(f"{url}/v1/counts", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate(timeout=5)
    # uvicorn shuts down gracefully, then re-raises SIGINT: tally exits 130 as for Ctrl-C.
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "applied migration 001_domain" in stderr


def test_serve_reports_an_unreachable_store(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"postgresql://tally@127.0.0.1:{free_port()}/tally?connect_timeout=2"
    assert main(["serve", "--dsn", dead, "--port", str(free_port())]) == 1
    assert "cannot migrate the store" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _start_workers(dsn: str, port: int, workers: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["TALLY_LOGGING__LEVEL"] = "WARNING"
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "serve", "--dsn", dsn, "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_children(proc: subprocess.Popen[str], count: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _children(proc.pid)
        if len(found) == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} workers, found {_children(proc.pid)}")


@pytest.mark.timeout(90)
def test_serve_with_workers_answers_from_every_worker_and_stops_them_all(
    empty_database: str,
) -> None:
    port = free_port()
    proc = _start_workers(empty_database, port, 2)
    try:
        url = f"http://127.0.0.1:{port}"
        assert _wait_healthy(url, proc, timeout=30).status_code == 200
        workers = _wait_children(proc, 2, timeout=30)
        # Each new connection goes to one of the workers; all of them answer.
        for _ in range(20):
            assert httpx.get(f"{url}/v1/health", timeout=5).json()["store"] == "up"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


@pytest.mark.timeout(90)
def test_a_worker_that_dies_stops_the_service(empty_database: str) -> None:
    port = free_port()
    proc = _start_workers(empty_database, port, 2)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=30)
        first, second = _wait_children(proc, 2, timeout=30)
        os.kill(first, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 1
    assert f"worker {first} exited with -9; stopping the others" in stderr
    assert not Path(f"/proc/{second}").exists()


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_missing_signing_key_file_stops_the_start(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tally.yaml"
    missing = tmp_path / "secrets" / "signing.pem"
    config.write_text(
        f"version: 1\ndata_dir: {tmp_path / 'data'}\napi:\n  signing_key: {missing}\n"
    )
    assert main([command, "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"tally {command}: the signing key {missing} (api.signing_key) does not exist" in err
    assert not missing.exists() and not (tmp_path / "data").exists()
