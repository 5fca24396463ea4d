"""What a run costs per node, in portal queries, and the worker going on with a child it made ready
(continuation, runner.runs.execute_node): same guarantees, fewer round trips (bench/run.py, issue 7
item 8). The task bodies are called here as a worker calls them; test_runs_workers.py has the real
workers, which chain too."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runner import runs
from runner import warehouse as wh
from runner.models import Incident, NodeRun, Run, Schedule, WarehouseSlot
from tests.personas import make_user
from tests.runner.test_runs import commit_to_main, statuses

ROOT = Path(__file__).resolve().parents[2]

# a -> b -> c -> d, with two tests on b that run inside b's transaction, and e beside a
CHAIN = {
    "models/a.sql": "{{ config(materialized='table') }}select 1 as id",
    "models/b.sql": "{{ config(materialized='table') }}select * from {{ ref('a') }}",
    "models/c.sql": "select * from {{ ref('b') }}",
    "models/d.sql": "{{ config(materialized='table') }}select * from {{ ref('c') }}",
    "models/e.sql": "select 2 as id",
    "models/schema.yml": "version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n"
                         "        tests: [unique, not_null]\n",
}
# A budget of queries per node, the whole node: claim, slot, results, incidents, what runs next, the
# run's end. It was 13 to 16 before the plan was kept in memory (and 32 for a worker's first node).
QUERIES_PER_NODE = 10
QUERIES_PER_CHAINED_NODE = 5  # claim, hand the slot over, its result, its tests' results


def slot(hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, 3, hour, tzinfo=dt.UTC)


def fire(hour: int) -> Run:
    return runs.fire_schedule(Schedule.objects.get().pk, slot(hour))


def queued(run: Run) -> list[NodeRun]:
    return list(NodeRun.objects.filter(run=run, status="queued").order_by("id"))


@pytest.fixture
def quiet(settings):
    settings.DMAAS_MEASURE_BUILDS = False  # the data watch's measuring has its own budget (issue 9)


@pytest.mark.django_db
def test_a_node_costs_a_bounded_number_of_portal_queries(duck, quiet):
    commit_to_main(CHAIN)
    run = fire(9)
    first = queued(run)[0]
    runs.execute_node(first.pk, worker="warm-up")  # a worker's first node also reads the plan, slot rows
    counts = {}
    while nodes := queued(run):
        with CaptureQueriesContext(connection) as captured:
            runs.execute_node(nodes[0].pk, worker="test")
        counts[nodes[0].name] = len(captured)
    run.refresh_from_db()
    assert run.status == "success", run.message
    assert len(counts) == 4 and "d" in counts
    closing = counts.pop("d")  # the last node also closes the run: counts, its row, what waits behind it
    assert max(counts.values()) <= QUERIES_PER_NODE and closing <= QUERIES_PER_NODE + 6, (counts, closing)


@pytest.mark.django_db
def test_a_worker_goes_on_with_the_child_it_made_ready_in_the_same_task(duck, quiet):
    commit_to_main(CHAIN)
    run = fire(10)
    a = NodeRun.objects.get(run=run, name="a")
    runs.execute_node(NodeRun.objects.get(run=run, name="e").pk, worker="warm-up")
    with CaptureQueriesContext(connection) as captured:
        assert runs.execute_node(a.pk, worker="w1", chain_seconds=3600) == "success"
    run.refresh_from_db()
    assert run.status == "success" and statuses(run) == dict.fromkeys("abcde", "success") | {
        "unique_b_id": "pass", "not_null_b_id": "pass"}
    chained = {n.name: n for n in NodeRun.objects.filter(run=run, name__in="bcd")}
    # run here, one after the other, never sent through the broker: taken from pending to running
    assert {n.worker for n in chained.values()} == {"w1"} and all(n.attempts == 1 for n in chained.values())
    assert all(n.queued_at == n.started_at for n in chained.values())
    assert chained["b"].started_at >= NodeRun.objects.get(run=run, name="a").finished_at
    # every compare-and-set on a node is on the row's own columns: `id IN (select ...)` is not evaluated
    # again on PostgreSQL when a concurrent update commits first, so two workers could take one node
    updates = [q["sql"] for q in captured if q["sql"].startswith('UPDATE "runner_noderun"')]
    assert updates and not [u for u in updates if '"runner_noderun"."id" IN (SELECT' in u], updates
    # a, then b, c, d chained; d closes the run (6 more, as above), then none waits in the queue (1),
    # and a worker's first claim may look at the slot rows (2): about 60 before continuation
    assert len(captured) <= QUERIES_PER_CHAINED_NODE * 4 + 9, "\n".join(q["sql"][:150] for q in captured)
    assert not WarehouseSlot.objects.filter(holder__isnull=False).exists()  # given back at the end


@pytest.mark.django_db
def test_a_task_goes_on_only_while_the_next_node_fits_in_its_time(duck, quiet, settings):
    settings.DMAAS_MODEL_TIME_LIMIT = 900
    commit_to_main(CHAIN)
    run = fire(11)
    a = NodeRun.objects.get(run=run, name="a")
    runs.execute_node(a.pk, worker="w1", chain_seconds=900)  # b's limit would take it past Celery's
    assert NodeRun.objects.get(run=run, name="b").status == "queued"  # sent to the broker instead


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_run_stops_a_chain_before_its_next_node(duck, quiet):
    """`on_failure: continue` would let c run after b; the run is cancelled while b runs: c is skipped
    and never started, though this task would have gone on with it."""
    slow_b = ("{{ config(materialized='table', meta={'time_limit': 2, 'on_failure': 'continue'}) }}"
              "select count(*)::int as id from range(100000000000) r cross join {{ ref('a') }} x")
    commit_to_main({**CHAIN, "models/b.sql": slow_b, "models/schema.yml": "version: 2\n"})
    run = fire(12)
    a = NodeRun.objects.get(run=run, name="a")
    done = []
    task = threading.Thread(target=lambda: done.append(runs.execute_node(a.pk, worker="w1", chain_seconds=3600)))
    task.start()
    deadline = time.monotonic() + 30
    while not NodeRun.objects.filter(run=run, name="b", status="running").exists():
        assert time.monotonic() < deadline, (statuses(run), done, list(NodeRun.objects.filter(run=run).values_list("name", "message")))
        time.sleep(0.02)
    runs.cancel_run(make_user("adam", "admin"), run)
    task.join(60)
    assert not task.is_alive() and done
    run.refresh_from_db()
    got = statuses(run)
    assert run.status == "cancelled" and got["a"] == "success" and got["b"] == "timeout", got
    c = NodeRun.objects.get(run=run, name="c")
    assert (c.status, c.worker, c.attempts) == ("skipped", "", 0)
    assert not WarehouseSlot.objects.filter(holder__isnull=False).exists()
    assert Incident.objects.filter(subject="b", cause="timeout").exists()


@pytest.mark.django_db
def test_with_no_child_ready_a_task_takes_a_node_still_waiting_in_the_queue(duck, quiet):
    commit_to_main(CHAIN)
    run = fire(13)
    a, e = (NodeRun.objects.get(run=run, name=name) for name in "ae")
    assert {a.status, e.status} == {"queued"}
    runs.execute_node(a.pk, worker="w1", chain_seconds=3600)
    run.refresh_from_db()
    assert run.status == "success", run.message
    e.refresh_from_db()
    assert (e.worker, e.attempts, e.status) == ("w1", 1, "success") and e.queued_at < e.started_at
    assert runs.execute_node(e.pk, worker="w2") == "success"  # its message, delivered later: nothing to do
    e.refresh_from_db()
    assert (e.worker, e.attempts) == ("w1", 1)


def test_a_held_file_goes_to_another_process_once_asked_and_let_go(tmp_path):
    """Between the nodes of one task the DuckDB file stays open even when another process asks for
    it, until the hold has lasted DMAAS_WAREHOUSE_HOLD_SECONDS; then it is handed over at once."""
    path = str(tmp_path / "w.duckdb")
    host = wh.DuckDBHost(path)
    hold = wh._Hold(host, seconds=3600)
    with host.write_lease(10, linger=60) as db:
        db.execute("create table t as select 1 as id")
        hold.join()  # inside the first node's lease: the file stays past its end
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from runner.warehouse import DuckDBHost\n"
            "with DuckDBHost(sys.argv[1]).write_lease(60) as db:\n"
            "    db.execute('insert into t values (2)')\n")
    other = subprocess.Popen([sys.executable, "-c", code, path, str(ROOT)], env={"PATH": "/usr/bin:/bin"},
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not host.yield_requested:
            assert time.monotonic() < deadline and other.poll() is None, "the other process never asked"
            time.sleep(0.02)
        hold.between_nodes()  # asked, but held for less than its seconds: kept
        assert host.mode == "rw" and other.poll() is None
        hold.release()  # the task ends (or its seconds are up): handed over at once
        assert host.mode is None
        assert other.wait(30) == 0, other.stderr.read()
    finally:
        if other.poll() is None:
            other.kill()
    with host.write_lease(10) as db:
        assert db.execute("select id from t order by id").fetchall() == [(1,), (2,)]
