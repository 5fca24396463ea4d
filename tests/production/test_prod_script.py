"""scripts/prod, the production shape without Docker, started for real and stopped with SIGTERM.

Against the machine's PostgreSQL (a throwaway portal database and a warehouse database) and Redis (a
database number nobody uses): gunicorn on a free port, two Celery workers and one beat. The portal
must report every component healthy, serve hashed static files with long caching through WhiteNoise,
log a user in, answer a Celery ping from both workers, run beat, write JSON log lines, and stop every
process it started on SIGTERM. Under CI=true a missing server fails the test instead of skipping it.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from celery import Celery

from tests import services
from tests.production.prod import clean_env, descendants, live_children, running, scripts_prod

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long passphrase for the prod test"


def _free_redis_db(base_url: str) -> str:
    """A Redis database number with no keys (the tests' own, 15, is flushed by other tests)."""
    for number in range(1, 15):
        url = re.sub(r"/\d*$", "", base_url.rstrip("/")) + f"/{number}"
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set(f"dmaas-prod-test-claim-{number}", "1", nx=True, ex=600):
            return url
    pytest.fail("no empty Redis database among 1-14")


def _postgres(base: str, database: str) -> str:
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


# Recycling guards set tiny, so the test sees them work: a gunicorn worker is replaced after 10 requests,
# a pool process after 2 tasks (RELIABILITY L6; the defaults are 5,000 and 1,000).
MAX_REQUESTS, MAX_TASKS = 10, 2


@pytest.fixture
def production(tmp_path, postgres_url, redis_url):
    tag = uuid.uuid4().hex[:8]
    portal_db, warehouse_db = f"dmaas_prod_{tag}", f"dmaas_prod_{tag}_wh"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'create database "{portal_db}"')
        conn.execute(f'create database "{warehouse_db}"')
    broker = _free_redis_db(redis_url)
    env = {
        "DATABASE_URL": _postgres(postgres_url, portal_db),
        "DMAAS_WAREHOUSE": _postgres(postgres_url, warehouse_db),
        "CELERY_BROKER_URL": broker,  # and, by scripts/prod's default, the cache every web worker shares
        "DMAAS_PROD_WEB_WORKERS": "2",
        "DMAAS_PROD_CONCURRENCY": "1",
        "DMAAS_PROD_WEB_MAX_REQUESTS": str(MAX_REQUESTS),
        "DMAAS_PROD_WEB_MAX_REQUESTS_JITTER": "0",
        "DMAAS_WORKER_MAX_TASKS_PER_CHILD": str(MAX_TASKS),
    }
    try:
        with scripts_prod(tmp_path, env) as prod:
            yield prod
    finally:
        redis.Redis.from_url(broker).flushdb()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for db in (portal_db, warehouse_db):
                conn.execute(f'drop database if exists "{db}" with (force)')


def test_scripts_prod_runs_the_production_shape_and_stops_it_on_sigterm(production):
    started = time.monotonic()
    health = production.wait_healthy()
    assert health["status"] == "ok", health
    assert {name: c["status"] for name, c in health["components"].items()} == {
        "database": "ok", "broker": "ok", "warehouse": "ok", "git_store": "ok"}
    assert health["components"]["broker"]["kind"] == "redis"
    assert health["components"]["warehouse"]["kind"].startswith("postgres")
    assert "latency_ms" in health["components"]["database"]
    assert "@" not in json.dumps(health)  # no URL with a login in it
    ready_seconds = time.monotonic() - started
    base = production.base

    # A page and its hashed static file, served by WhiteNoise with a year of caching and gzip.
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = browser.open(base + "/accounts/login/", timeout=10).read().decode()
    css = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login_page)
    assert css, "the login page links no hashed stylesheet"
    request = urllib.request.Request(base + css.group(1), headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
        assert "max-age=315360000" in response.headers["Cache-Control"]
        assert response.headers["Content-Encoding"] == "gzip"

    # Log in as an analyst made with the command line, and load a page that needs the login.
    subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "dmaas_user", "ana", "--role", "analyst",
                    "--password-stdin"], input=PASSWORD + "\n", cwd=ROOT, env=production.env, check=True,
                   capture_output=True, text=True, timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    form = urllib.parse.urlencode({"username": "ana", "password": PASSWORD, "csrfmiddlewaretoken": token})
    answer = browser.open(urllib.request.Request(base + "/accounts/login/", data=form.encode(),
                                                 headers={"Referer": base + "/accounts/login/"}), timeout=10)
    assert answer.status == 200 and urllib.parse.urlsplit(answer.url).path == "/"
    page = browser.open(base + "/changes/", timeout=10)
    assert page.status == 200 and urllib.parse.urlsplit(page.url).path == "/changes/"
    assert "ana" in page.read().decode()
    # The API's request limits are counted in Redis, shared by both gunicorn workers, not once per worker.
    assert browser.open(base + "/api/v1/changes", timeout=10).status == 200
    assert list(redis.Redis.from_url(production.env["CELERY_BROKER_URL"]).scan_iter("*throttle_client*"))

    # Two workers answer a ping; beat is running and has put its schedule into the database.
    deadline, answered = time.monotonic() + 60, set()
    while time.monotonic() < deadline and len(answered) < 2:
        ping = production.celery("inspect", "ping", "--timeout", "3", "--json")
        if ping.returncode == 0:
            answered = {name.split("@")[0] for line in ping.stdout.splitlines() if line.startswith("{")
                        for name in json.loads(line)}
    assert answered == {"dmaas-worker1", "dmaas-worker2"}, ping.stdout + ping.stderr
    logs = production.logs()
    pids = {label: int(pid) for label, pid in re.findall(r"^prod: (\w+) pid (\d+)$", logs, re.M)}
    assert set(pids) == {"web", "worker1", "worker2", "beat"}
    assert running(pids["beat"])
    with psycopg.connect(production.env["DATABASE_URL"]) as conn:
        scheduled = {name for (name,) in conn.execute("select name from django_celery_beat_periodictask")}
    assert {"dmaas-reconcile-runs", "dmaas-sla-sweep"} <= scheduled

    # Structured logs: JSON lines with the request id of each request.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "dmaas.request"]
    assert any(line["path"] == "/changes/" and line["status"] == 200 and line.get("request_id") for line in access)

    # Recycling (RELIABILITY L6): gunicorn replaces a worker that has answered MAX_REQUESTS requests, and
    # each Celery worker's prefork pool a process that has run MAX_TASKS tasks. Both workers carry it.
    web_before = live_children(pids["web"])
    assert len(web_before) == 2
    for _ in range(3 * MAX_REQUESTS):  # 30 requests over 2 workers: at least one answers 10
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            assert response.status == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            len(live_children(pids["web"])) == 2 and set(web_before) - set(live_children(pids["web"]))):
        time.sleep(0.2)
    web_after = live_children(pids["web"])
    assert len(web_after) == 2 and set(web_before) - set(web_after), (web_before, web_after)
    assert "Autorestarting worker after current request" in production.logs()
    stats = production.celery("inspect", "stats", "--timeout", "5", "--json")
    pools = {name.split("@")[0]: reply["pool"] for line in stats.stdout.splitlines() if line.startswith("{")
             for name, reply in json.loads(line).items()}
    assert {name: pool["max-tasks-per-child"] for name, pool in pools.items()} == {
        "dmaas-worker1": MAX_TASKS, "dmaas-worker2": MAX_TASKS}, stats.stdout + stats.stderr
    workers = [pids["worker1"], pids["worker2"]]
    pool_before = {pid for worker in workers for pid in live_children(worker)}
    assert len(pool_before) == 2  # one pool process each (DMAAS_PROD_CONCURRENCY=1)
    sender = Celery("dmaas-prod-test", broker=production.env["CELERY_BROKER_URL"], set_as_current=False)
    try:
        for _ in range(2 * MAX_TASKS + 1):  # 5 tasks over 2 pool processes: at least one runs 3
            sender.send_task("portal.tasks.ping")
    finally:
        sender.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            pool_before - {pid for worker in workers for pid in live_children(worker)}):
        time.sleep(0.2)
    pool_after = {pid for worker in workers for pid in live_children(worker)}
    assert pool_before - pool_after, "no pool process was replaced after its tasks"
    deadline = time.monotonic() + 30  # each replaced one is followed by a fresh one
    while time.monotonic() < deadline and len({pid for w in workers for pid in live_children(w)}) != 2:
        time.sleep(0.2)
    assert len({pid for worker in workers for pid in live_children(worker)}) == 2

    # SIGTERM to the script alone stops everything it started.
    everything = descendants(production.proc.pid)
    assert set(pids.values()) <= everything
    stop_started = time.monotonic()
    production.proc.send_signal(signal.SIGTERM)
    assert production.proc.wait(60) == 143
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(pid) for pid in everything):
        time.sleep(0.2)
    assert not [pid for pid in everything if running(pid)]
    sys.stderr.write(f"\nscripts/prod: healthy after {ready_seconds:.1f} s, "
                     f"stopped in {time.monotonic() - stop_started:.1f} s\n")


def test_scripts_prod_refuses_the_embedded_defaults(tmp_path):
    result = subprocess.run([str(ROOT / "scripts" / "prod")], cwd=ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert "DATABASE_URL must be set" in result.stderr


def test_the_services_it_needs_are_required_under_ci(monkeypatch):
    """The same rule as every other service test: in CI a missing server is a failure."""
    monkeypatch.setattr(services, "IN_CI", True)
    monkeypatch.setattr(services, "REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(pytest.fail.Exception):
        services.require_redis()
