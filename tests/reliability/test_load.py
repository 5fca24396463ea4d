"""Load, short versions for CI (RELIABILITY.md L3, L4); bench/reliability.py runs the long ones.

L3: analysts preview (1,000-row previews, runner.preview through the API) from several threads while
the hourly run builds on a real worker (in-process, the embedded DuckDB warehouse): preview p95 and
the scheduled run's queue delay (beat's message sent -> the run started) are printed.
L4: the API at a steady rate on a live server, each client on a token of its own: error rate and p99;
a client over its quota gets 429 with Retry-After.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest

import runner.tasks
from portal import tokens
from portal.api.frame import ClientRateThrottle
from runner.models import NodeRun, Run, Schedule
from tests.api.conftest import client_for
from tests.personas import make_user
from tests.runner.conftest import commit_to_main, duck  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import filesystem_broker, finished_run, worker

from .load import get, percentile, steady
from .services import record, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
L3_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_L3_SECONDS", "12"))
L3_USERS = int(os.environ.get("DMAAS_RELIABILITY_L3_USERS", "4"))
L4_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_L4_SECONDS", "8"))
L4_RPS = float(os.environ.get("DMAAS_RELIABILITY_L4_RPS", "25"))
PREVIEW = {"name": "my_model", "sql": "select i, i * 2 as twice, 'row ' || i as label from range(1000) t(i)",
           "limit": 1000}
HOURLY = {f"models/hourly_{i:02d}.sql": ("{{ config(materialized='table') }}\n"
                                         f"select i, i % 7 as k from range({20000 + i}) t(i)\n") for i in range(30)}


def test_l3_previews_during_an_hourly_run(analyst, duck, tmp_path):  # noqa: F811
    commit_to_main(HOURLY)
    schedule = Schedule.objects.get()
    client = client_for(analyst)
    assert client.post("/api/v1/preview", PREVIEW, format="json").status_code == 200  # warm
    latencies: list[float] = []
    statuses: list[int] = []
    stop = threading.Event()

    def user() -> None:
        mine = client_for(analyst)
        while not stop.is_set():
            t0 = time.monotonic()
            response = mine.post("/api/v1/preview", PREVIEW, format="json")
            latencies.append(time.monotonic() - t0)
            statuses.append(response.status_code)

    slot = dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC)
    with filesystem_broker(tmp_path) as app, worker(app):
        threads = [threading.Thread(target=user, daemon=True) for _ in range(L3_USERS)]
        for t in threads:
            t.start()
        time.sleep(1)
        sent = time.time()
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        run = wait_until(lambda: Run.objects.filter(slot=slot).exclude(started_at=None).first(), 60, "the run to start")
        queue_delay = run.started_at.timestamp() - sent
        time.sleep(max(0.0, L3_SECONDS - (time.time() - sent)))
        stop.set()
        for t in threads:
            t.join(30)
        run = finished_run(schedule, slot, 120)
    nodes = list(NodeRun.objects.filter(run=run))
    node_waits = [(n.started_at - n.queued_at).total_seconds() for n in nodes if n.started_at and n.queued_at]
    p95 = percentile(latencies, 95)
    errors = sum(s != 200 for s in statuses)
    record("L3", f"{len(latencies)} previews of 1,000 rows by {L3_USERS} users in {L3_SECONDS:.0f} s during an "
                 f"hourly run of {len(nodes)} models: p50 {percentile(latencies, 50):.2f} s, p95 {p95:.2f} s, "
                 f"{errors} errors; run queue delay {queue_delay:.2f} s, node queue wait p95 "
                 f"{percentile(node_waits, 95):.2f} s, run {run.status}",
           previews=len(latencies), p95_s=round(p95, 3), errors=errors, queue_delay_s=round(queue_delay, 3),
           run=run.status)
    assert errors == 0 and run.status == "success", (set(statuses), run.message)
    # RELIABILITY's p95 < 3 s and queue delay < 60 s are figures (printed above; bench/reliability.py
    # judges the long run): asserted here only far enough out to catch a stall, not as a stopwatch
    assert p95 < 30 and queue_delay < 120


def test_l4_the_api_at_a_steady_rate_and_429_with_retry_after_over_quota(live_server, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "120/minute", "anon": "60/minute"})
    clients = max(4, int(L4_RPS))  # ~1 call a second each: well inside 120 a minute
    raw = []
    for i in range(clients):
        user = make_user(f"load{i}", "analyst")
        raw.append(tokens.create_token(user, user, name="load", source="cli").raw)
    url = f"{live_server.url}/api/v1/changes"
    tally, rate = steady(lambda i: get(url, raw[i])[0], rps=L4_RPS, seconds=L4_SECONDS, clients=clients)
    # over quota: one client, as fast as it can
    greedy = raw[0]
    over = None
    for _ in range(200):
        status, headers = get(url, greedy)
        if status == 429:
            over = headers
            break
    error_rate = tally.errors / max(tally.count, 1)
    p99 = percentile(tally.latencies, 99)
    retry_after = (over or {}).get("Retry-After")
    record("L4", f"{tally.count} calls at {rate:.0f} rps for {L4_SECONDS:.0f} s ({clients} tokens): error rate "
                 f"{error_rate:.2%}, p50 {percentile(tally.latencies, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
                 f"over quota: 429 with Retry-After {retry_after}",
           calls=tally.count, rps=round(rate, 1), error_rate=error_rate, p99_ms=round(p99 * 1000, 1),
           statuses=tally.statuses, retry_after=retry_after)
    assert tally.statuses.get(200, 0) == tally.count, tally.statuses
    assert over is not None and int(retry_after) > 0
    assert p99 < 10  # the 500 ms target is the printed figure; this catches a stall only
