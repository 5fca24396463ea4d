"""Load, short versions for CI (RELIABILITY.md L3, L4); bench/reliability.py runs the long ones.

L3: analysts preview (1,000-row previews, runner.preview through the API) from several threads while
hourly runs build on a real worker (in-process, the embedded DuckDB warehouse), one slot after the
other for the whole window, so every preview has a run beside it: preview p95 and the scheduled runs'
queue delay (beat's message sent -> the run started, worst of the window) are printed.
L4: the API at a steady rate on a live server, each client on a token of its own: error rate and p99;
a client over its quota gets 429 with Retry-After. CI serves it from Django's live server thread;
the long run (DMAAS_RELIABILITY_L4_GUNICORN=N) from gunicorn with N workers on PostgreSQL, the
production shape, so the load generator (this process) and the server do not share one interpreter.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

import runner.tasks
from portal import tokens
from portal.api.frame import ClientRateThrottle
from runner.models import NodeRun, Run, Schedule
from tests.api.conftest import client_for
from tests.personas import make_user
from tests.runner.conftest import commit_to_main, duck  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import filesystem_broker, finished_run, postgres_portal, worker  # noqa: F401

from .load import get, percentile, steady
from .services import free_port, record, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
L3_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_L3_SECONDS", "12"))
L3_USERS = int(os.environ.get("DMAAS_RELIABILITY_L3_USERS", "4"))
L3_THINK = float(os.environ.get("DMAAS_RELIABILITY_L3_THINK", "0"))  # a user's pause between previews
L4_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_L4_SECONDS", "8"))
L4_RPS = float(os.environ.get("DMAAS_RELIABILITY_L4_RPS", "25"))
L4_GUNICORN = int(os.environ.get("DMAAS_RELIABILITY_L4_GUNICORN", "0"))  # web workers; 0: the CI version only
ROOT = Path(__file__).resolve().parents[2]
PREVIEW = {"name": "my_model", "sql": "select i, i * 2 as twice, 'row ' || i as label from range(1000) t(i)",
           "limit": 1000}
HOURLY = {f"models/hourly_{i:02d}.sql": ("{{ config(materialized='table') }}\n"
                                         f"select i, i % 7 as k from range({20000 + i}) t(i)\n") for i in range(30)}


def test_l3_previews_during_an_hourly_run(analyst, duck, tmp_path):  # noqa: F811
    commit_to_main(HOURLY)
    schedule = Schedule.objects.get()
    client = client_for(analyst)
    assert client.post("/api/v1/preview", PREVIEW, format="json").status_code == 200  # warm
    people = [make_user(f"previewer{i}", "analyst") for i in range(L3_USERS)]
    latencies: list[float] = []
    statuses: list[int] = []
    stop = threading.Event()

    def user(i: int) -> None:
        mine = client_for(people[i])  # each user on an account of its own, with its own request quota
        while not stop.is_set():
            t0 = time.monotonic()
            response = mine.post("/api/v1/preview", PREVIEW, format="json")
            latencies.append(time.monotonic() - t0)
            statuses.append(response.status_code)
            stop.wait(L3_THINK)

    slot = dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC)
    finished: list[Run] = []
    delays: list[float] = []
    with filesystem_broker(tmp_path) as app, worker(app):
        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(L3_USERS)]
        for t in threads:
            t.start()
        time.sleep(1)
        began = time.time()
        while not finished or time.time() - began < L3_SECONDS:  # hourly runs back to back: one at a time
            sent = time.time()
            runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
            run = wait_until(lambda slot=slot: Run.objects.filter(slot=slot).exclude(started_at=None).first(), 120,
                             "the run to start")
            delays.append(run.started_at.timestamp() - sent)
            finished.append(finished_run(schedule, slot, 300))
            slot += dt.timedelta(hours=1)
        stop.set()
        for t in threads:
            t.join(30)
        window = time.time() - began
    nodes = list(NodeRun.objects.filter(run__in=finished))
    node_waits = [(n.started_at - n.queued_at).total_seconds() for n in nodes if n.started_at and n.queued_at]
    p95 = percentile(latencies, 95)
    errors = sum(s != 200 for s in statuses)
    failed = [r.message for r in finished if r.status != "success"]
    queue_delay = max(delays)
    record("L3", f"{len(latencies)} previews of 1,000 rows by {L3_USERS} users (pause {L3_THINK:g} s) in "
                 f"{window:.0f} s during {len(finished)} hourly runs of {len(HOURLY)} models back to back: "
                 f"p50 {percentile(latencies, 50):.2f} s, p95 {p95:.2f} s, {errors} errors; run queue delay "
                 f"worst {queue_delay:.2f} s, node queue wait p95 {percentile(node_waits, 95):.2f} s, "
                 f"{len(failed)} runs not successful",
           previews=len(latencies), users=L3_USERS, think_s=L3_THINK, seconds=round(window, 1),
           p50_s=round(percentile(latencies, 50), 3), p95_s=round(p95, 3), errors=errors, runs=len(finished),
           runs_failed=len(failed), queue_delay_s=round(queue_delay, 3), queue_delays_s=[round(d, 3) for d in delays],
           run="success" if not failed else "failed")
    assert errors == 0 and not failed, (set(statuses), failed)
    # RELIABILITY's p95 < 3 s and queue delay < 60 s are figures (printed above; bench/reliability.py
    # judges the long run): asserted here only far enough out to catch a stall, not as a stopwatch
    assert p95 < 30 and queue_delay < 120


def _tokens(count: int, prefix: str = "load") -> list[str]:
    raw = []
    for i in range(count):
        user = make_user(f"{prefix}{i}", "analyst")
        raw.append(tokens.create_token(user, user, name="load", source="cli").raw)
    return raw


def _l4(base_url: str, raw: list[str], served_by: str) -> None:
    """The steady rate (one client a token, ~1 call a second each, inside a 120 a minute quota), then
    one client as fast as it can until it is told 429; records and checks."""
    url = f"{base_url}/api/v1/changes"
    tally, rate = steady(lambda i: get(url, raw[i])[0], rps=L4_RPS, seconds=L4_SECONDS, clients=len(raw))
    greedy = raw[0]
    over = None
    for _ in range(200):
        status, headers = get(url, greedy)
        if status == 429:
            over = headers
            break
    error_rate = tally.errors / max(tally.count, 1)
    p99 = percentile(tally.latencies, 99)
    late = percentile(tally.late, 99)
    retry_after = (over or {}).get("Retry-After")
    record("L4", f"{tally.count} calls, {L4_RPS:g} rps offered, {rate:.0f} achieved, for {L4_SECONDS:.0f} s "
                 f"({len(raw)} tokens, {served_by}): error rate {error_rate:.2%}, "
                 f"p50 {percentile(tally.latencies, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, calls started "
                 f"late p99 {late * 1000:.0f} ms; over quota: 429 with Retry-After {retry_after}",
           calls=tally.count, offered_rps=L4_RPS, rps=round(rate, 1), seconds=L4_SECONDS, served_by=served_by,
           error_rate=error_rate, p50_ms=round(percentile(tally.latencies, 50) * 1000, 1),
           p99_ms=round(p99 * 1000, 1), late_p99_ms=round(late * 1000, 1), statuses=tally.statuses,
           retry_after=retry_after)
    assert tally.statuses.get(200, 0) == tally.count, tally.statuses
    assert over is not None and int(retry_after) > 0
    assert p99 < 10  # the 500 ms target is the printed figure; this catches a stall only


def test_l4_the_api_at_a_steady_rate_and_429_with_retry_after_over_quota(live_server, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "120/minute", "anon": "60/minute"})
    _l4(live_server.url, _tokens(max(4, int(L4_RPS))), "Django's live server thread, SQLite")


@pytest.mark.skipif(not L4_GUNICORN, reason="the long L4: set DMAAS_RELIABILITY_L4_GUNICORN to the web workers")
def test_l4_on_gunicorn_and_postgresql(postgres_portal, private_redis, tmp_path, settings):  # noqa: F811
    """As production serves it: gunicorn workers on PostgreSQL, throttling counted in a shared Redis cache."""
    raw, (warming,) = _tokens(max(4, int(L4_RPS))), _tokens(1, "warm")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": postgres_portal, "DMAAS_CACHE_URL": private_redis.url,
           "DMAAS_API_RATE": "120/minute", "DMAAS_DEBUG": "0", "DMAAS_SECRET_KEY": secrets.token_urlsafe(64),
           "DMAAS_ALLOWED_HOSTS": "127.0.0.1", "DMAAS_REPO": str(settings.DMAAS_REPO), "DMAAS_REPO_REMOTE": "",
           "DMAAS_VAR_DIR": str(tmp_path / "var"), "DMAAS_LOG_FORMAT": "json"}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "portal.wsgi", "--bind",
                                 f"127.0.0.1:{port}", "--workers", str(L4_GUNICORN)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: proc.poll() is not None or get(f"{base}/api/v1/changes", warming)[0] == 200, 60,
                   "gunicorn to answer", every=0.2)
        assert proc.poll() is None, log.read_text()[-3000:]
        # every worker answers a few calls first (its first request imports the views), as a running server
        # would have; on a token of their own, so they take nothing from the steady rate's quotas
        warm = [threading.Thread(target=lambda: [get(f"{base}/api/v1/models", warming) for _ in range(2)])
                for _ in range(4 * L4_GUNICORN)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        _l4(base, raw, f"gunicorn, {L4_GUNICORN} workers, PostgreSQL")
    finally:
        proc.terminate()
        proc.wait(30)
