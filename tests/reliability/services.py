"""Private Redis and PostgreSQL servers for the fault cases, killed and restarted by the tests.

The machine's shared servers (127.0.0.1:5432 and :6379) are used by other test runs at the same time:
a fault test never stops them. Each private server runs on a free port from a folder of its own,
with AOF on for Redis. When a binary is missing the test is skipped on a laptop and fails under
CI=true (tests/services.py).

Figures: `record(case, line, **numbers)` prints `RELIABILITY <case>: <line>` and keeps the numbers
in bench/out/reliability.json, which docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests import services

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "bench" / "out" / "reliability.json"
PG_BIN = Path(os.environ.get("DMAAS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, seconds: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(every)


def record(case: str, line: str, **numbers: Any) -> None:
    """Print the case's figure on one line and keep it in bench/out/reliability.json."""
    print(f"\nRELIABILITY {case}: {line}")  # noqa: T201 - the figure is the point
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    try:
        figures = json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        figures = {}
    figures[case] = {"line": line, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **numbers}
    tmp = FIGURES.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(FIGURES)


# --------------------------------------------------------------------------- Redis


class PrivateRedis:
    """`redis-server` with AOF on, in a folder of its own; stop/start keep the folder (and the queue)."""

    def __init__(self, folder: Path | None = None):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            services.unavailable("redis-server is not installed: the fault cases need a private Redis")
        self.folder = Path(folder or tempfile.mkdtemp(prefix="dmaas-redis-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"],
            stdout=(self.folder / "redis.log").open("a"), stderr=subprocess.STDOUT)
        wait_until(self.up, 15, "the private Redis to answer")
        return self

    def up(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis writes its AOF and exits (a restart keeps the queue). SIGKILL: a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def restart(self) -> float:
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- PostgreSQL


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb + pg_ctl) on a free port, trust auth, fsync off.

    initdb refuses to run as root: as root, the cluster's folder belongs to `postgres` and the
    server runs as that user (runuser), as a packaged server would."""

    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            services.unavailable(f"{PG_BIN}/initdb is missing: the fault cases need a private PostgreSQL")
        self.folder = Path(tempfile.mkdtemp(prefix="dmaas-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(PG_BIN / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> PrivatePostgres:
        opts = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"), "-w", "start")
        wait_until(self.up, 15, "the private PostgreSQL to answer")
        return self

    def up(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    def stop(self, mode: str = "fast") -> None:
        """fast: every backend is terminated ("terminating connection due to administrator command")."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> float:
        began = time.monotonic()
        self.stop(mode)
        self.start()
        return time.monotonic() - began

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.init().start()

    def __exit__(self, *exc: object) -> None:
        self.close()
