"""L6, the soak (RELIABILITY.md): a documented command only, never in CI's default run.

    DMAAS_RELIABILITY_SOAK_SECONDS=1800 .venv/bin/pytest -s -p no:cacheprovider tests/reliability/test_soak.py
    .venv/bin/python bench/reliability.py --only L6 --soak-minutes 30

Hourly runs (10 models) fired back to back through a private Redis to a real worker process, and API
calls to this process (the web side) between them. RSS and open file descriptors of both are sampled
after a warm-up and at the end: RSS growth < 10 %, FDs within 5 %.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from runner import runs
from runner.models import RUN_FINISHED, Run, Schedule
from tests.api.conftest import client_for
from tests.runner.conftest import commit_to_main, postgres_warehouse  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import postgres_portal  # noqa: F401 - a fixture

from .services import record, wait_until
from .workers import sending_to, workers

SOAK_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_SOAK_SECONDS", "0"))
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not SOAK_SECONDS, reason="the soak is a command: set DMAAS_RELIABILITY_SOAK_SECONDS")]


def sample(pid: int) -> tuple[int, int]:
    """(RSS in kB, open file descriptors) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_l6_soak(postgres_portal, postgres_warehouse, private_redis, tmp_path, analyst, monkeypatch):  # noqa: F811
    from portal.api.frame import ClientRateThrottle

    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "100000/minute", "anon": "60/minute"})
    commit_to_main({f"models/soak_{i}.sql": f"{{{{ config(materialized='table') }}}}\nselect {i} as n\n"
                    for i in range(10)})
    postgres_warehouse.run("create schema analytics")
    schedule = Schedule.objects.get()
    client = client_for(analyst)
    slot = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    samples: dict[str, list[tuple[float, int, int]]] = {"web": [], "worker": []}
    count = 0
    with sending_to(private_redis.url), workers(tmp_path, 1, database_url=postgres_portal,
                                                broker_url=private_redis.url, warehouse_url=postgres_warehouse.url,
                                                name="soak") as (proc,):
        began = time.monotonic()
        while time.monotonic() - began < SOAK_SECONDS:
            slot += dt.timedelta(hours=1)
            run = runs.fire_schedule(schedule.pk, slot)
            wait_until(lambda run=run: Run.objects.filter(pk=run.pk, status__in=RUN_FINISHED).exists(), 120,
                       "a soak run to finish", every=0.2)
            for _ in range(20):
                assert client.get("/api/v1/changes").status_code == 200
                assert client.get("/api/v1/models").status_code == 200
            count += 1
            if count == 3 or count % 10 == 0:  # after a warm-up, then now and then
                now = time.monotonic() - began
                samples["web"].append((now, *sample(os.getpid())))
                samples["worker"].append((now, *sample(proc.pid)))
        samples["web"].append((time.monotonic() - began, *sample(os.getpid())))
        samples["worker"].append((time.monotonic() - began, *sample(proc.pid)))
    growth = {k: ((v[-1][1] - v[0][1]) / v[0][1], v[-1][2] - v[0][2], v[0][2]) for k, v in samples.items()}
    record("L6", f"soak {SOAK_SECONDS / 60:.0f} min, {count} runs and {count * 40} API calls: "
           + "; ".join(f"{k} RSS {samples[k][0][1] / 1024:.0f} -> {samples[k][-1][1] / 1024:.0f} MB "
                       f"({g:+.1%}), FDs {samples[k][0][2]} -> {samples[k][-1][2]}" for k, (g, _, _) in growth.items()),
           runs=count, seconds=SOAK_SECONDS, samples=samples,
           **{f"{k}_rss_growth": round(g, 4) for k, (g, _, _) in growth.items()},
           **{f"{k}_fds": [samples[k][0][2], samples[k][-1][2]] for k in growth})
    for _kind, (rss, fds, start) in growth.items():
        assert rss < 0.10 and abs(fds) <= max(2, 0.05 * start)
