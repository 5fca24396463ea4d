"""The warehouse's PostgreSQL restarted, or down, mid-run (RELIABILITY.md F5), on a private cluster.

A production run on a real (in-process) worker: `slow` sleeps in the warehouse, `after_slow` reads
it. Restarted under `slow` ("terminating connection due to administrator command"): the node fails
clearly, is retried with backoff (runner/runs.py TRANSIENT) and `after_slow` is built from the new
`slow` only. Down for good: `slow` gives up after 3 attempts and `after_slow` is skipped, never built
on the old inputs.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

import runner.tasks
from runner import warehouse as wh
from runner.models import NodeRun, Schedule
from tests.runner.conftest import Warehouse, commit_to_main
from tests.runner.test_runs_workers import _sleeping_backends, filesystem_broker, finished_run, worker

from .services import record, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
FILES = {
    "models/slow.sql": ("{{ config(materialized='table') }}\n"
                        "select g as id from generate_series(1, 20) g\n"
                        "cross join (select pg_sleep(delay) as nothing from control.knobs) as waiting\n"),
    "models/after_slow.sql": "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('slow') }}\n",
}


@pytest.fixture
def private_warehouse(private_postgres, settings):
    url = private_postgres.create_database("warehouse")
    settings.DMAAS_WAREHOUSE = url
    wh.forget_warehouses()
    w = Warehouse("postgres", url)
    w.run("create schema control", "create table control.knobs (delay float)", "insert into control.knobs values (4)",
          "create schema analytics", "create table analytics.slow as select g as id from generate_series(1, 10) g",
          "create table analytics.after_slow as select 10::bigint as n")
    yield private_postgres, w
    wh.forget_warehouses()


def _nodes(run) -> dict[str, NodeRun]:
    return {n.name: n for n in NodeRun.objects.filter(run=run)}


def test_f5_a_warehouse_restart_mid_model_fails_it_clearly_retries_it_and_builds_children_on_new_inputs(
        private_warehouse, tmp_path):
    server, w = private_warehouse
    commit_to_main(FILES)
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 3, tzinfo=dt.UTC)
    with filesystem_broker(tmp_path) as app, worker(app):
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        wait_until(lambda: _sleeping_backends(w.url), 30, "slow's query to run in the warehouse", every=0.1)
        restart_s = server.restart("fast")
        first_error = wait_until(lambda: NodeRun.objects.filter(name="slow", attempts=1, status="queued").first(),
                                 15, "slow's first attempt to fail").message
        w.run("update control.knobs set delay = 0")
        run = finished_run(schedule, slot, 60)
    nodes = _nodes(run)
    slow, child = nodes["slow"], nodes["after_slow"]
    record("F5", f"warehouse restarted in {restart_s:.1f} s mid-model: attempt 1 failed ({first_error[:90]!r}), "
                 f"slow {slow.status} on attempt {slow.attempts}, after_slow {child.status} "
                 f"(n={w.rows('select n from analytics.after_slow')[0][0]}, built from the new slow)",
           restart_s=round(restart_s, 2), attempts=slow.attempts, first_error=first_error)
    assert "trying again" in first_error and "connection" in first_error, first_error
    assert (run.status, slow.status, slow.attempts, child.status) == ("success", "success", 2, "success"), (
        run.message, slow.message)
    assert child.started_at >= slow.finished_at
    assert w.rows("select count(*) from analytics.slow") == [(20,)]
    assert w.rows("select n from analytics.after_slow") == [(20,)]


def test_f5_a_warehouse_down_for_good_gives_up_after_three_attempts_and_skips_the_children(
        private_warehouse, tmp_path):
    server, w = private_warehouse
    commit_to_main(FILES)
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 4, tzinfo=dt.UTC)
    began = time.monotonic()
    with filesystem_broker(tmp_path) as app, worker(app):
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        wait_until(lambda: _sleeping_backends(w.url), 30, "slow's query to run in the warehouse", every=0.1)
        server.stop("fast")
        run = finished_run(schedule, slot, 60)
    took = time.monotonic() - began
    nodes = _nodes(run)
    slow, child = nodes["slow"], nodes["after_slow"]
    record("F5-down", f"warehouse down for good: slow {slow.status} after {slow.attempts} attempts "
                      f"({slow.message[:90]!r}), after_slow {child.status}, run {run.status} in {took:.1f} s",
           attempts=slow.attempts, message=slow.message, child=child.status)
    assert (slow.status, slow.attempts, child.status, run.status) == ("error", 3, "skipped", "failed")
    assert "could not run" in slow.message or "connection" in slow.message.lower()
    assert child.cause == slow.unique_id and not child.worker  # never dispatched
