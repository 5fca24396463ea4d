"""/healthz: liveness, and with ?full=1 the state of everything the portal depends on.

`GET /healthz` stays what load balancers and the container health check call: 200 while this process
and its database answer, 503 when the database does not. It checks nothing else on purpose: a web
process whose warehouse is down still serves pages and must not be taken out of rotation for it.

`GET /healthz?full=1` reports each component (database, broker, warehouse, git store) with its state
and latency, 200 when all are "ok" and 503 otherwise. The whole is "degraded", not "error", when only
the broker or the warehouse is down: saves, reviews and approvals still work (tasks wait in the
outbox, RELIABILITY F4), while runs, previews and builds wait for it. Unauthenticated, so it names no host, user or
URL and shows no error text (servers put those in messages): a failure is its exception class, and
the full error goes to the log. Each process answers from a report at most
DMAAS_HEALTH_CACHE_SECONDS old, so calling it in a loop costs the servers behind it little.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 3

_cache_lock = threading.Lock()
_cached: tuple[float, dict[str, Any]] | None = None


class Unhealthy(Exception):
    """A component answered, but not as it should: `state` is shown (a fixed word, never server text)."""

    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker() -> str:
    url = str(settings.CELERY_BROKER_URL)
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
        return "redis"
    if scheme == "filesystem":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "control_folder"):
            folder = options.get(key)
            if not folder or not os.access(folder, os.W_OK | os.X_OK):
                raise Unhealthy("folder_unwritable")
        return "filesystem"
    raise Unhealthy("unknown_broker")


def check_warehouse() -> str:
    url = str(settings.DMAAS_WAREHOUSE)
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url, connect_timeout=TIMEOUT_SECONDS, autocommit=True) as conn:
            conn.execute("select 1").fetchone()
        preview_url = str(getattr(settings, "DMAAS_PREVIEW_WAREHOUSE", "") or "")
        if not preview_url:
            return "postgres"
        try:  # previews log in as a role of their own: a wrong password there breaks only previews
            with psycopg.connect(preview_url, connect_timeout=TIMEOUT_SECONDS, autocommit=True) as conn:
                conn.execute("select 1").fetchone()
        except psycopg.Error:
            raise Unhealthy("preview_login_failed") from None
        return "postgres, previews on their own login"
    if url.startswith("duckdb://"):
        # Opening the file would queue behind a build that holds it (one process at a time, see
        # runner/warehouse.py): the folder it lives in, and the file when it exists, must be usable.
        from runner.engine.adapters.duckdb import duckdb_path

        path = duckdb_path(url)
        if path == ":memory:":
            return "duckdb"
        target = Path(path)
        if target.exists():
            if not os.access(target, os.R_OK | os.W_OK):
                raise Unhealthy("file_unwritable")
        elif not os.access(target.parent, os.W_OK | os.X_OK):
            raise Unhealthy("folder_unwritable")
        return "duckdb"
    raise Unhealthy("unknown_warehouse")


def check_git_store() -> str:
    """The bare repository is there and writable, or (before its first use) can be created."""
    path = Path(settings.DMAAS_REPO)
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            raise Unhealthy("cannot_create")
        return "not created yet (made on first use)"
    if not ((path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()):
        raise Unhealthy("not_a_repository")
    if not os.access(path / "objects", os.W_OK | os.X_OK) or not os.access(path / "refs", os.W_OK | os.X_OK):
        raise Unhealthy("not_writable")
    return "bare repository"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "warehouse": check_warehouse,
    "git_store": check_git_store,
}


def _run(name: str, check: Callable[[], str]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        kind = check()
        entry: dict[str, Any] = {"status": "ok", "kind": kind}
    except Unhealthy as err:
        log.warning("health: %s is %s", name, err.state)
        entry = {"status": "error", "error": err.state}
    except Exception as err:  # any failure of a dependency is its state: reported here and logged
        log.warning("health: %s failed: %s", name, err, exc_info=log.isEnabledFor(logging.DEBUG))
        entry = {"status": "error", "error": type(err).__name__}
    entry["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return entry


# Without these nothing can be saved; without the others the portal works on, with less.
ESSENTIAL = ("database", "git_store")


def report() -> dict[str, Any]:
    """Every component's state, checked now."""
    components = {name: _run(name, check) for name, check in CHECKS.items()}
    if all(c["status"] == "ok" for c in components.values()):
        status = "ok"
    elif all(components[name]["status"] == "ok" for name in ESSENTIAL):
        status = "degraded"
    else:
        status = "error"
    return {
        "status": status,
        "database": "ok" if components["database"]["status"] == "ok" else "unreachable",
        "copy": settings.DMAAS_COPY or "production",
        "components": components,
    }


def cached_report() -> dict[str, Any]:
    global _cached
    ttl = float(getattr(settings, "DMAAS_HEALTH_CACHE_SECONDS", 2))
    with _cache_lock:
        now = time.monotonic()
        if _cached is None or now - _cached[0] >= ttl:
            _cached = (now, report())
        return _cached[1]


def forget_report() -> None:
    """Drop the cached report (tests)."""
    global _cached
    with _cache_lock:
        _cached = None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness (the database answers), or with ?full=1 every component; 200 when all are ok, else 503."""
    if request.GET.get("full") in ("1", "true", "yes"):
        body = cached_report()
        return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
