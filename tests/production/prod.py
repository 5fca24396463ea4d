"""scripts/prod started for real, for the tests that need the processes production runs: gunicorn and its
workers, Celery workers (prefork) and beat, on the databases and the Redis the caller's environment names.

`scripts_prod(tmp_path, env)` starts it on a free port with a throwaway secret key, `DMAAS_DEBUG=0` and its
state under tmp_path, on top of a clean environment (none of this test process's DMAAS_ or CELERY_
settings leak in), and kills whatever is left of it afterwards. The caller creates the databases.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DMAAS_", "CELERY_", "PYTEST_"))
        and name not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
    }


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (stopped processes whose parent died linger as zombies here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def live_children(pid: int) -> list[int]:
    """`pid`'s running children: a gunicorn master's workers, a Celery worker's pool processes."""
    return sorted(child for child in children().get(pid, []) if running(child))


@dataclass
class Prod:
    proc: subprocess.Popen
    env: dict[str, str]
    base: str
    tmp: Path

    def logs(self) -> str:
        return (self.tmp / "stderr.log").read_text() + (self.tmp / "stdout.log").read_text()

    def pids(self) -> dict[str, int]:
        """What scripts/prod printed at start: web (the gunicorn master), worker1.., beat."""
        return {label: int(pid) for label, pid in re.findall(r"^prod: (\w+) pid (\d+)$", self.logs(), re.M)}

    def wait_healthy(self, seconds: float = 180) -> dict:
        deadline = time.monotonic() + seconds
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"scripts/prod exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz?full=1", timeout=5) as response:
                    return json.load(response)
            except urllib.error.HTTPError as err:
                last = json.load(err)
            except OSError as err:
                last = err
            time.sleep(0.5)
        pytest.fail(f"never healthy; last answer {last}\n{self.logs()[-4000:]}")

    def celery(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / ".venv/bin/celery"), "-A", "portal", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)


@contextmanager
def scripts_prod(tmp_path: Path, env: dict[str, str]) -> Iterator[Prod]:
    """scripts/prod with `env` (DATABASE_URL, CELERY_BROKER_URL, DMAAS_WAREHOUSE and any knob) over the
    defaults below; every process it started is killed at the end, whatever state the test left it in."""
    port = free_port()
    full = clean_env() | {
        "DMAAS_DEBUG": "0",
        "DMAAS_SECRET_KEY": secrets.token_urlsafe(64),
        "DMAAS_ALLOWED_HOSTS": "127.0.0.1",
        "DMAAS_VAR_DIR": str(tmp_path / "var"),
        "DMAAS_STATIC_ROOT": str(tmp_path / "static"),
        "DMAAS_PROD_BIND": f"127.0.0.1:{port}",
        "DMAAS_PROD_STOP_SECONDS": "30",
    } | env
    out, err = open(tmp_path / "stdout.log", "w"), open(tmp_path / "stderr.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(ROOT / "scripts" / "prod")], cwd=ROOT, env=full, stdout=out, stderr=err,
                            start_new_session=True)
    try:
        yield Prod(proc=proc, env=full, base=f"http://127.0.0.1:{port}", tmp=tmp_path)
    finally:
        family = descendants(proc.pid)  # before the script dies: then its children are no longer its own
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in family | descendants(proc.pid):
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        out.close()
        err.close()
