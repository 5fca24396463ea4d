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
import os
import re
import secrets
import signal
import socket
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

from tests import services

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long passphrase for the prod test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _clean_env() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DMAAS_", "CELERY_", "PYTEST_"))
        and name not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
    }


def _children() -> dict[int, list[int]]:
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


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (stopped processes whose parent died linger as zombies here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def production(tmp_path, postgres_url, redis_url):
    tag = uuid.uuid4().hex[:8]
    portal_db, warehouse_db = f"dmaas_prod_{tag}", f"dmaas_prod_{tag}_wh"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'create database "{portal_db}"')
        conn.execute(f'create database "{warehouse_db}"')
    broker = _free_redis_db(redis_url)
    port = _free_port()
    env = _clean_env() | {
        "DMAAS_DEBUG": "0",
        "DMAAS_SECRET_KEY": secrets.token_urlsafe(64),
        "DMAAS_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": _postgres(postgres_url, portal_db),
        "DMAAS_WAREHOUSE": _postgres(postgres_url, warehouse_db),
        "CELERY_BROKER_URL": broker,  # and, by scripts/prod's default, the cache every web worker shares
        "DMAAS_VAR_DIR": str(tmp_path / "var"),
        "DMAAS_STATIC_ROOT": str(tmp_path / "static"),
        "DMAAS_PROD_BIND": f"127.0.0.1:{port}",
        "DMAAS_PROD_WEB_WORKERS": "2",
        "DMAAS_PROD_CONCURRENCY": "1",
        "DMAAS_PROD_STOP_SECONDS": "30",
    }
    out, err = open(tmp_path / "stdout.log", "w"), open(tmp_path / "stderr.log", "w")
    proc = subprocess.Popen([str(ROOT / "scripts" / "prod")], cwd=ROOT, env=env, stdout=out, stderr=err,
                            start_new_session=True)
    try:
        yield {"proc": proc, "env": env, "base": f"http://127.0.0.1:{port}", "tmp": tmp_path,
               "portal_db": env["DATABASE_URL"]}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in _descendants(proc.pid):
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        out.close()
        err.close()
        redis.Redis.from_url(broker).flushdb()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for db in (portal_db, warehouse_db):
                conn.execute(f'drop database if exists "{db}" with (force)')


def _logs(production) -> str:
    return (production["tmp"] / "stderr.log").read_text() + (production["tmp"] / "stdout.log").read_text()


def _wait_healthy(production, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        if production["proc"].poll() is not None:
            pytest.fail(f"scripts/prod exited with {production['proc'].returncode}:\n{_logs(production)[-4000:]}")
        try:
            with urllib.request.urlopen(production["base"] + "/healthz?full=1", timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            last = json.load(err)
        except OSError as err:
            last = err
        time.sleep(0.5)
    pytest.fail(f"never healthy; last answer {last}\n{_logs(production)[-4000:]}")


def _celery(production, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv/bin/celery"), "-A", "portal", *args], cwd=ROOT,
                          env=production["env"], capture_output=True, text=True, timeout=60)


def test_scripts_prod_runs_the_production_shape_and_stops_it_on_sigterm(production):
    started = time.monotonic()
    health = _wait_healthy(production)
    assert health["status"] == "ok", health
    assert {name: c["status"] for name, c in health["components"].items()} == {
        "database": "ok", "broker": "ok", "warehouse": "ok", "git_store": "ok"}
    assert health["components"]["broker"]["kind"] == "redis"
    assert health["components"]["warehouse"]["kind"].startswith("postgres")
    assert "latency_ms" in health["components"]["database"]
    assert "@" not in json.dumps(health)  # no URL with a login in it
    ready_seconds = time.monotonic() - started
    base = production["base"]

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
                    "--password-stdin"], input=PASSWORD + "\n", cwd=ROOT, env=production["env"], check=True,
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
    assert list(redis.Redis.from_url(production["env"]["CELERY_BROKER_URL"]).scan_iter("*throttle_client*"))

    # Two workers answer a ping; beat is running and has put its schedule into the database.
    deadline, answered = time.monotonic() + 60, set()
    while time.monotonic() < deadline and len(answered) < 2:
        ping = _celery(production, "inspect", "ping", "--timeout", "3", "--json")
        if ping.returncode == 0:
            answered = {name.split("@")[0] for line in ping.stdout.splitlines() if line.startswith("{")
                        for name in json.loads(line)}
    assert answered == {"dmaas-worker1", "dmaas-worker2"}, ping.stdout + ping.stderr
    logs = _logs(production)
    pids = {label: int(pid) for label, pid in re.findall(r"^prod: (\w+) pid (\d+)$", logs, re.M)}
    assert set(pids) == {"web", "worker1", "worker2", "beat"}
    assert _running(pids["beat"])
    with psycopg.connect(production["portal_db"]) as conn:
        scheduled = {name for (name,) in conn.execute("select name from django_celery_beat_periodictask")}
    assert {"dmaas-reconcile-runs", "dmaas-sla-sweep"} <= scheduled

    # Structured logs: JSON lines with the request id of each request.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "dmaas.request"]
    assert any(line["path"] == "/changes/" and line["status"] == 200 and line.get("request_id") for line in access)

    # SIGTERM to the script alone stops everything it started.
    everything = _descendants(production["proc"].pid)
    assert set(pids.values()) <= everything
    stop_started = time.monotonic()
    production["proc"].send_signal(signal.SIGTERM)
    assert production["proc"].wait(60) == 143
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in everything):
        time.sleep(0.2)
    assert not [pid for pid in everything if _running(pid)]
    sys.stderr.write(f"\nscripts/prod: healthy after {ready_seconds:.1f} s, "
                     f"stopped in {time.monotonic() - stop_started:.1f} s\n")


def test_scripts_prod_refuses_the_embedded_defaults(tmp_path):
    result = subprocess.run([str(ROOT / "scripts" / "prod")], cwd=ROOT, env=_clean_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert "DATABASE_URL must be set" in result.stderr


def test_the_services_it_needs_are_required_under_ci(monkeypatch):
    """The same rule as every other service test: in CI a missing server is a failure."""
    monkeypatch.setattr(services, "IN_CI", True)
    monkeypatch.setattr(services, "REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(pytest.fail.Exception):
        services.require_redis()
