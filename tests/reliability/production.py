"""The production shape for the long load cases (L1, L3, L4): gunicorn serving the portal from its PostgreSQL
database, and the warehouse's two logins made by `manage.py dmaas_warehouse_roles`, as
docker-compose.yml's `migrate` service makes them.

The load generator stays in the test process; the server is other processes, so the two never share
one interpreter (or its GIL). Roles are cluster-wide: their names are this run's own and they are
dropped afterwards, as tests/production/test_roles.py does.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.core.management import call_command

from .load import percentile
from .services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


WEB_THREADS = 4  # threads per gunicorn worker: scripts/prod's and docker-compose.yml's DMAAS_PROD_WEB_THREADS


@contextmanager
def gunicorn(workers: int, tmp_path: Path, *, database_url: str, cache_url: str, repo: str, probe: Callable[[str], int],
             threads: int = WEB_THREADS, **env: str) -> Iterator[tuple[str, Path]]:
    """`gunicorn portal.wsgi` with `workers` workers of `threads` threads each (1: gunicorn's sync workers)
    on the portal's database, the request limits counted in the Redis at `cache_url` (as scripts/prod
    does), JSON logs (one access line per request with its duration_ms) in the log file.
    `probe(base_url)` returns an HTTP status: 200 once it serves. Extra settings in `env`. Yields (base
    URL, log file); stops it afterwards."""
    port = free_port()
    full = {**os.environ, "DATABASE_URL": database_url, "DMAAS_CACHE_URL": cache_url, "DMAAS_DEBUG": "0",
            "DMAAS_SECRET_KEY": secrets.token_urlsafe(64), "DMAAS_ALLOWED_HOSTS": "127.0.0.1", "DMAAS_REPO": repo,
            "DMAAS_REPO_REMOTE": "", "DMAAS_VAR_DIR": str(tmp_path / "var"), "DMAAS_LOG_FORMAT": "json", **env}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "portal.wsgi", "--bind",
                                 f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)],
                                cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: proc.poll() is not None or probe(base) == 200, 60, "gunicorn to answer", every=0.2)
        assert proc.poll() is None, log.read_text()[-3000:]
        yield base, log
    finally:
        proc.terminate()
        proc.wait(30)


def warm(call: Callable[[], Any], workers: int) -> None:
    """Every gunicorn worker answers a few calls first (its first request imports the views), as a
    running server's would have: 4 concurrent callers per worker, twice each."""
    threads = [threading.Thread(target=lambda: [call() for _ in range(2)]) for _ in range(4 * workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def served_ms(log: Path, method: str, path: str, *, prefix: bool = False) -> list[float]:
    """duration_ms of each request to `path` (with `prefix`, to any path under it) in gunicorn's JSON log:
    the time inside the server, from the portal's middleware on (the wait in gunicorn's backlog and the
    client's own time excluded)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if '"duration_ms"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        served = str(entry.get("path", ""))
        if entry.get("method") == method and (served.startswith(path) if prefix else served == path):
            found.append(float(entry["duration_ms"]))
    return found


def spread_ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "p99": round(percentile(values, 99), 1)}


@dataclass
class Logins:
    """The warehouse's production login (builds) and preview login (SELECT only), as URLs."""

    warehouse: str
    preview: str
    roles: tuple[str, str]


def _as(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:pw-{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def warehouse_logins(admin_url: str, portal_url: str) -> Iterator[Logins]:
    """Two roles of this run's own on the warehouse database at `admin_url` (a superuser's URL), made and
    granted by `dmaas_warehouse_roles --apply` and nothing else; the portal's database (`portal_url`) is
    closed to both. Whatever they own and were granted is dropped afterwards, then the roles (before the
    databases go: the fixtures that made those drop them later)."""
    tag = uuid.uuid4().hex[:8]
    owner, preview = f"dmaas_rel_{tag}_owner", f"dmaas_rel_{tag}_preview"
    logins = Logins(_as(admin_url, owner), _as(admin_url, preview), (owner, preview))
    portal = urlsplit(portal_url)
    try:
        call_command("dmaas_warehouse_roles", "--apply", "--admin-url", admin_url, "--warehouse-url", logins.warehouse,
                     "--preview-url", logins.preview, "--portal-database", portal.path.lstrip("/"),
                     "--portal-role", portal.username or "postgres", stdout=io.StringIO())
        yield logins
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            made = [r[0] for r in conn.execute("select rolname from pg_roles where rolname = any(%s)",
                                                ([owner, preview],)).fetchall()]
            if made:
                conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = any(%s)",
                             (made,))
                # in the warehouse database: their objects, default privileges and grants (on the
                # databases too), so the roles can go. One role a statement: the owner's default
                # privileges name the preview role, and PostgreSQL 15 fails ("could not find tuple for
                # default ACL") when one DROP OWNED meets that entry through both.
                for role in made:
                    conn.execute(f'drop owned by "{role}"')
                for role in made:
                    conn.execute(f'drop role "{role}"')
