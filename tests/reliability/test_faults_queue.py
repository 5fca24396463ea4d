"""Tasks queued while no worker runs, then drained by real worker processes (RELIABILITY.md F3, L7).

The tasks are a production run's nodes (`runner.tasks.run_node`): the test fires the hourly schedule
itself (the task body beat's message runs), which plans the run and sends one message per model to a
private Redis with AOF. F3 restarts Redis under the 200 queued messages (SIGTERM, then a new server
on the same folder); L7 queues 1,000. Then worker processes drain the queue. Exactly once is counted
three ways: messages the workers ran (their logs), each node's attempts (the claim counts them), and
the models in the warehouse.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from runner import runs
from runner.models import NodeRun, Run, Schedule
from tests.runner.conftest import commit_to_main, postgres_warehouse  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import postgres_portal  # noqa: F401 - a fixture

from .services import record, wait_until
from .workers import PREFIX, executed, sending_to, workers

# 1,000 take ~2 min on 2 CPUs: CI queues 300, bench/reliability.py the full 1,000 (DMAAS_RELIABILITY_L7_TASKS).
L7_TASKS = int(os.environ.get("DMAAS_RELIABILITY_L7_TASKS", "300"))
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def _queue_a_run(count: int, hour: int) -> Run:
    commit_to_main({f"models/m_{i:04d}.sql": f"select {i} as n\n" for i in range(count)})
    schedule = Schedule.objects.get()
    run = runs.fire_schedule(schedule.pk, dt.datetime(2026, 12, 1, hour, tzinfo=dt.UTC))
    assert run is not None and run.nodes_total == count
    return run


def _drain(tmp_path, run: Run, count: int, processes: int, *, portal: str, broker: str, warehouse: str,
           seconds: float) -> float:
    began = time.monotonic()
    with workers(tmp_path, processes, database_url=portal, broker_url=broker, warehouse_url=warehouse):
        wait_until(lambda: NodeRun.objects.filter(run=run, status="success").count() == count
                   or Run.objects.get(pk=run.pk).finished, seconds, f"{count} nodes to be built", every=0.5)
        drained = time.monotonic() - began
        # a worker goes on with nodes still queued (runner.runs.execute_node): their messages, taken
        # after, find them done and do nothing; each is still taken once, and none is lost
        wait_until(lambda: executed(tmp_path, "runner.tasks.run_node") >= count, 60, "every message to be taken",
                   every=0.5)
        time.sleep(1)  # a duplicate delivered late would show in the logs now
    return drained


def _exactly_once(tmp_path, run: Run, warehouse) -> dict[str, int]:
    nodes = list(NodeRun.objects.filter(run=run))
    tables = warehouse.rows("select count(*) from information_schema.views where table_schema = 'analytics'")
    return {"nodes": len(nodes), "success": sum(n.status == "success" for n in nodes),
            "attempts": sum(n.attempts for n in nodes), "executed": executed(tmp_path, "runner.tasks.run_node"),
            "in_warehouse": tables[0][0]}


def test_f3_a_redis_restart_with_200_tasks_queued_loses_none_and_runs_none_twice(
        postgres_portal, postgres_warehouse, private_redis, tmp_path):  # noqa: F811
    count = 200
    postgres_warehouse.run("create schema analytics")
    with sending_to(private_redis.url):
        run = _queue_a_run(count, 1)
    queued = private_redis.client().llen(f"{PREFIX}celery")
    restart_s = private_redis.restart()
    after_restart = private_redis.client().llen(f"{PREFIX}celery")
    drained = _drain(tmp_path, run, count, 2, portal=postgres_portal, broker=private_redis.url,
                     warehouse=postgres_warehouse.url, seconds=90)
    got = _exactly_once(tmp_path, run, postgres_warehouse)
    lost, dupes = count - got["success"], got["attempts"] - got["success"]
    record("F3", f"{queued} queued, Redis restarted in {restart_s:.1f} s with {after_restart} still queued, "
                 f"{got['executed']} executed, {lost} lost, {dupes} duplicates, drained in {drained:.1f} s "
                 "by 2 workers", queued=queued, after_restart=after_restart, executed=got["executed"],
           lost=lost, duplicates=dupes, drained_s=round(drained, 2))
    assert queued == after_restart == count
    assert got == {"nodes": count, "success": count, "attempts": count, "executed": count, "in_warehouse": count}


def test_l7_tasks_queued_during_an_outage_drain_each_exactly_once(
        postgres_portal, postgres_warehouse, private_redis, tmp_path):  # noqa: F811
    count = L7_TASKS
    postgres_warehouse.run("create schema analytics")
    with sending_to(private_redis.url):
        run = _queue_a_run(count, 2)
    queued = private_redis.client().llen(f"{PREFIX}celery")
    drained = _drain(tmp_path, run, count, 2, portal=postgres_portal, broker=private_redis.url,
                     warehouse=postgres_warehouse.url, seconds=60 + count * 0.3)
    got = _exactly_once(tmp_path, run, postgres_warehouse)
    record("L7", f"{queued} queued with no worker, {got['executed']} executed, {got['success']} built, "
                 f"{got['attempts'] - got['success']} duplicates, drained in {drained:.1f} s "
                 f"({count / drained:.0f} tasks/s, 2 workers)", queued=queued, executed=got["executed"],
           built=got["success"], duplicates=got["attempts"] - got["success"], drained_s=round(drained, 2))
    assert queued == count
    assert got == {"nodes": count, "success": count, "attempts": count, "executed": count, "in_warehouse": count}
