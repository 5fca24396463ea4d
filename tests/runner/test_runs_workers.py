"""Production runs through real Celery workers (issue 7, item 7): tests/runner/test_runs.py calls the
task bodies itself; here messages go through a broker to workers that run `runner.tasks.*`, nodes
are dispatched by the workers as their parents finish, and the warehouse's concurrency limit, a
worker killed mid-node and two beats firing one slot are exercised for real.

Workers are Celery's in-process test workers (`start_worker`, threads of this process), except in
the kill test, whose first worker is a separate `celery -A portal worker` process killed with SIGKILL.
Redis tests isolate themselves with a key prefix of their own (kombu's `global_keyprefix`: queues,
unacked messages and all), deleted afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
import redis
from celery import Celery, current_app
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

import runner.tasks
from portal.broker import filesystem_transport_options, redis_transport_options
from runner import runs
from runner.models import RUN_FINISHED, Incident, Measurement, NodeRun, Run, Schedule, WarehouseSlot
from tests.runner.test_runs import SEVEN, commit_to_main

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ["celery", runner.tasks.INTERACTIVE_QUEUE]  # what every worker of the project consumes
FIVE = {k: v for k, v in SEVEN.items() if k not in ("models/invalid.sql", "models/skip.sql")}
TEMPORARY = "%\\_\\_dmaas\\_%"  # the engine's temporary relations: <name>__dmaas_tmp_<hex>, __dmaas_old_


# --------------------------------------------------------------------------- workers and brokers


def _app(name: str, **conf: Any) -> Celery:
    """A Celery app configured like the project's (its CELERY_* settings), on the broker given."""
    from portal.celery import app as project_app

    app = Celery(name, set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(result_backend=None, task_routes=project_app.conf.task_routes, **conf)
    return app


@contextmanager
def current(app: Celery) -> Iterator[Celery]:
    """`app` is where this process sends tasks (the service's `.delay()` calls) while the block runs."""
    previous = current_app._get_current_object()
    app.set_current()
    app.set_default()
    try:
        yield app
    finally:
        previous.set_current()
        previous.set_default()
        app.close()


@contextmanager
def filesystem_broker(tmp_path: Path) -> Iterator[Celery]:
    """The embedded default: kombu's filesystem transport, in a folder of this test's own."""
    with current(_app("dmaas-test-runs-fs", broker_url="filesystem://localhost//",
                      broker_transport_options=filesystem_transport_options(tmp_path / "broker"))) as app:
        yield app


def redis_options(prefix: str) -> dict[str, Any]:
    return {**redis_transport_options(7200), "global_keyprefix": prefix}


@contextmanager
def redis_broker(url: str) -> Iterator[tuple[Celery, str]]:
    """Redis, every key of this test under a prefix of its own (its queues are its own); removed after."""
    prefix = f"dmaas-test-runs-{uuid.uuid4().hex[:12]}:"
    try:
        with current(_app("dmaas-test-runs-redis", broker_url=url,
                          broker_transport_options=redis_options(prefix))) as app:
            yield app, prefix
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


@contextmanager
def worker(app: Celery, threads: int = 1, hostname: str | None = None) -> Iterator[Any]:
    """An in-process worker consuming the project's queues, with `threads` threads."""
    kwargs = {"hostname": hostname} if hostname else {}
    with start_worker(app, pool="threads" if threads > 1 else "solo", concurrency=threads,
                      perform_ping_check=False, shutdown_timeout=30, queues=QUEUES, **kwargs) as w:
        yield w


def wait_for(check: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(every)


def finished_run(schedule: Schedule, slot: dt.datetime, seconds: float = 45) -> Run:
    def done() -> Run | None:
        run = Run.objects.filter(schedule=schedule, slot=slot).first()
        return run if run is not None and run.status in RUN_FINISHED else None

    return wait_for(done, seconds, f"the run of {slot:%H:%M} to finish")


def statuses(run: Run) -> dict[str, str]:
    return dict(NodeRun.objects.filter(run=run).values_list("name", "status"))


def most_at_once(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one moment (one ending when another starts does not overlap it)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def slot_at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, 1, hour, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- 1, 2: an hourly run end to end


def _an_hourly_run_end_to_end(warehouse) -> None:
    commit_to_main(FIVE)
    schedule = Schedule.objects.get()  # the default, created by post_migrate
    slot = slot_at(10)
    runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())  # what beat sends
    run = finished_run(schedule, slot)
    assert run.status == "success", run.message
    assert run.trigger == "schedule" and run.nodes_total == 5 and run.sha
    nodes = list(NodeRun.objects.filter(run=run))
    assert {n.name: n.status for n in nodes} == dict.fromkeys(
        ["view_model", "dep", "table_a", "table_b", "view_with_conflicting_cascade"], "success")
    assert all(n.worker and n.attempts == 1 and n.started_at and n.finished_at for n in nodes)
    by_name = {n.name: n for n in nodes}
    assert by_name["table_b"].started_at >= by_name["table_a"].finished_at  # dispatched when its parent ended
    assert by_name["dep"].started_at >= by_name["view_model"].finished_at
    assert warehouse.rows("select count(*) from analytics.table_b") == [(1,)]
    assert warehouse.rows("select count(*) from analytics.dep") == [(1,)]
    assert warehouse.rows("select count(*) from analytics.view_with_conflicting_cascade") == [(1,)]
    kinds = dict(warehouse.rows("select table_name, table_type from information_schema.tables "
                                "where table_schema = 'analytics' order by table_name"))
    assert {k: ("view" if "VIEW" in v.upper() else "table") for k, v in kinds.items()} == {
        "dep": "view", "table_a": "table", "table_b": "table", "view_model": "view",
        "view_with_conflicting_cascade": "view"}
    # the closing run queued its judging (an outbox task): a worker measured and judged every model
    wait_for(lambda: Run.objects.filter(pk=run.pk, judged_at__isnull=False).exists(), 30, "the run judged")
    measured = Measurement.objects.filter(run=run, kind="production")
    assert measured.count() == 5 and not measured.filter(pending=True).exists()
    assert all(m.columns and m.node_run_id for m in measured)


@pytest.mark.django_db(transaction=True)
def test_an_hourly_run_end_to_end_on_the_embedded_default(duck, tmp_path):
    with filesystem_broker(tmp_path) as app, worker(app):
        _an_hourly_run_end_to_end(duck)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_hourly_run_end_to_end_on_redis_and_postgresql(postgres_warehouse, redis_url):
    with redis_broker(redis_url) as (app, _), worker(app):
        _an_hourly_run_end_to_end(postgres_warehouse)


# --------------------------------------------------------------------------- 3: dbt's concurrency case


@pytest.mark.django_db(transaction=True)
def test_dbts_seven_models_on_two_worker_threads_give_five_one_one_and_one_incident(duck, tmp_path):
    commit_to_main(SEVEN)
    schedule = Schedule.objects.get()
    with filesystem_broker(tmp_path) as app, worker(app, threads=2):
        runner.tasks.fire_schedule.delay(schedule.pk, slot_at(11).isoformat())
        run = finished_run(schedule, slot_at(11))
    got = statuses(run)
    assert sorted(got.values()) == ["error", "skipped"] + ["success"] * 5, got
    assert got["invalid"] == "error" and got["skip"] == "skipped"
    assert run.status == "failed" and run.message == "5 of 7 nodes passed, 1 failed, 1 skipped"
    invalid = NodeRun.objects.get(run=run, name="invalid")
    assert "no_such_column" in invalid.message and invalid.attempts == 1
    skip = NodeRun.objects.get(run=run, name="skip")
    assert skip.cause == "model.data_models.invalid" and not skip.worker  # never dispatched
    incidents = list(Incident.objects.exclude(status="resolved"))
    assert [(i.subject, i.cause, i.status, i.failures) for i in incidents] == [("invalid", "model_failed", "open", 1)]
    assert duck.rows("select count(*) from analytics.table_b") == [(1,)]


# --------------------------------------------------------------------------- 4: the warehouse's concurrency limit

# A model that sleeps in the warehouse and records when it ran there, by the warehouse's own clock.
SLEEPER = ("{{{{ config(materialized='table') }}}}\n"
           "with began as materialized (select clock_timestamp() as t0),\n"
           "slept as materialized (select t0, pg_sleep({seconds}) as nothing from began)\n"
           "select t0, clock_timestamp() as t1 from slept\n")


def _sleepers(count: int, seconds: float) -> list[str]:
    names = [f"sleeper_{i}" for i in range(count)]
    commit_to_main({f"models/{name}.sql": SLEEPER.format(seconds=seconds) for name in names})
    return names


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_worker_threads_never_put_more_than_two_nodes_in_the_warehouse(postgres_warehouse, tmp_path,
                                                                             settings):
    settings.DMAAS_WAREHOUSE_CONCURRENCY = 2
    # The production schema exists, as after any first run. On a fresh warehouse the first nodes all
    # create it at once, and on PostgreSQL all but one fail (a unique violation on pg_namespace, which
    # the runner does not retry): another matter than the limit.
    postgres_warehouse.run("create schema analytics")
    names = _sleepers(9, 0.5)
    schedule = Schedule.objects.get()
    with filesystem_broker(tmp_path) as app, worker(app, threads=3):
        runner.tasks.fire_schedule.delay(schedule.pk, slot_at(12).isoformat())
        run = finished_run(schedule, slot_at(12))
    assert run.status == "success", run.message
    nodes = list(NodeRun.objects.filter(run=run))
    assert len(nodes) == 9 and {n.status for n in nodes} == {"success"}
    assert len({n.worker for n in nodes}) == 3  # three threads took nodes
    # In the warehouse, by its own clock: never more than two at once, and two at once for real.
    in_warehouse = [postgres_warehouse.rows(f"select t0, t1 from analytics.{name}")[0] for name in names]
    assert most_at_once(in_warehouse) == 2, sorted(in_warehouse)
    assert WarehouseSlot.objects.filter(target="analytics").count() == 2
    assert not WarehouseSlot.objects.filter(holder__isnull=False).exists()  # all given back


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_going_on_with_the_next_node_of_a_chain_keep_the_limit_too(postgres_warehouse, tmp_path,
                                                                        settings):
    """Three chains of three sleepers, three threads, two slots: a task that goes on with the child it
    made ready hands its slot to it, and never holds a second one (runner.runs.execute_node)."""
    settings.DMAAS_WAREHOUSE_CONCURRENCY = 2
    postgres_warehouse.run("create schema analytics")  # as in the test above
    body = SLEEPER.format(seconds=0.4)
    files = {}
    for chain in "xyz":
        for i in range(3):
            parent = f"\n-- after {{{{ ref('{chain}{i - 1}') }}}}\n" if i else ""
            files[f"models/{chain}{i}.sql"] = body + parent
    commit_to_main(files)
    schedule = Schedule.objects.get()
    with filesystem_broker(tmp_path) as app, worker(app, threads=3):
        runner.tasks.fire_schedule.delay(schedule.pk, slot_at(16).isoformat())
        run = finished_run(schedule, slot_at(16), seconds=60)
    assert run.status == "success", run.message
    nodes = list(NodeRun.objects.filter(run=run))
    assert len(nodes) == 9 and {n.status for n in nodes} == {"success"}
    in_warehouse = [postgres_warehouse.rows(f"select t0, t1 from analytics.{n.name}")[0] for n in nodes]
    assert most_at_once(in_warehouse) == 2, sorted(in_warehouse)
    # some nodes went on in their parent's task: taken from pending to running, never queued apart
    assert any(n.queued_at == n.started_at for n in nodes if n.name[1] != "0")
    assert not WarehouseSlot.objects.filter(holder__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_node_waiting_for_a_warehouse_slot_is_neither_shown_running_nor_taken_for_dead(
        postgres_warehouse, tmp_path, settings):
    """The NodeRuns' started_at..finished_at intervals are what the runs page shows; the reconciler
    requeues a running node whose heartbeat stopped. Three threads, two slots: the third node waits."""
    settings.DMAAS_WAREHOUSE_CONCURRENCY = 2
    settings.DMAAS_NODE_HEARTBEAT_SECONDS = 0.2
    settings.DMAAS_NODE_STALE_SECONDS = 1
    postgres_warehouse.run("create schema analytics")  # as in the test above
    _sleepers(3, 1.5)
    schedule = Schedule.objects.get()
    requeued = 0
    with filesystem_broker(tmp_path) as app, worker(app, threads=3):
        runner.tasks.fire_schedule.delay(schedule.pk, slot_at(13).isoformat())
        wait_for(lambda: Run.objects.filter(slot=slot_at(13), nodes_total=3).exists(), 20, "the run to be planned")
        deadline = time.monotonic() + 30
        while not Run.objects.filter(slot=slot_at(13), status__in=RUN_FINISHED).exists():
            assert time.monotonic() < deadline, "the run did not finish"
            requeued += runs.reconcile()["requeued"]  # beat's reconciler, often
            time.sleep(0.2)
        time.sleep(2)  # whatever was requeued ends too
    run = Run.objects.get(slot=slot_at(13))
    nodes = list(NodeRun.objects.filter(run=run))
    recorded = [(n.started_at, n.finished_at) for n in nodes]
    got = {"run": run.status, "most running at once": most_at_once(recorded), "requeued": requeued,
           "attempts": sorted(n.attempts for n in nodes)}
    assert got == {"run": "success", "most running at once": 2, "requeued": 0, "attempts": [1, 1, 1]}, (
        got, [(n.name, n.worker, n.started_at, n.finished_at, n.message) for n in nodes])


# --------------------------------------------------------------------------- 5: a worker killed mid-node

SLOW_OLD = "{{ config(materialized='table') }}\nselect g as id from generate_series(1, 10) g\n"
# The new version reads how long to sleep from a control table: 30 s on its first attempt, 0 after.
SLOW_NEW = ("{{ config(materialized='table') }}\n"
            "select g as id from generate_series(1, 20) g\n"
            "cross join (select pg_sleep(delay) as nothing from control.knobs) as waiting\n")
KILL_FILES = {
    "models/slow.sql": SLOW_OLD,
    "models/after_slow.sql": "select count(*) as n from {{ ref('slow') }}\n",
    "models/fast.sql": "{{ config(materialized='table') }}\nselect 1 as id\n",
}


@pytest.fixture
def postgres_portal(_django_db_helper, postgres_url) -> Iterator[str]:
    """The portal's tables on a PostgreSQL database of this test's own, migrated, for this process and
    any other: the worker process of the kill test shares it through DATABASE_URL. The test suite's
    own database (SQLite) is put back afterwards."""
    name = f"dmaas_portal_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    alias = "default"
    old_settings, old_connection = connections.settings[alias], connections[alias]
    connections.settings[alias] = connections.configure_settings({alias: dj_database_url.parse(url)})[alias]
    setattr(connections._connections, alias, connections.create_connection(alias))
    try:
        call_command("migrate", verbosity=0)  # post_migrate makes the hourly schedule
        yield url
    finally:
        connections[alias].close()
        connections.settings[alias] = old_settings
        setattr(connections._connections, alias, old_connection)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def worker_process(tmp_path: Path, *, database_url: str, broker_url: str, prefix: str, warehouse_url: str,
                   hostname: str) -> Iterator[subprocess.Popen]:
    """`celery -A portal worker` in a process of its own, on this test's database, repository, warehouse
    and broker keys. Settings it cannot take from the environment come from a module beside its log."""
    folder = tmp_path / hostname
    folder.mkdir()
    (folder / "worker_settings.py").write_text(
        "from portal.settings import *  # noqa: F403\n"
        "from portal.settings import CELERY_BROKER_TRANSPORT_OPTIONS\n\n"
        "DMAAS_NODE_HEARTBEAT_SECONDS = 1\n"
        f"CELERY_BROKER_TRANSPORT_OPTIONS = {{**CELERY_BROKER_TRANSPORT_OPTIONS, 'global_keyprefix': {prefix!r}}}\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "worker_settings",
           "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "DATABASE_URL": database_url,
           "CELERY_BROKER_URL": broker_url, "DMAAS_WAREHOUSE": warehouse_url,
           "DMAAS_REPO": str(django_settings.DMAAS_REPO), "DMAAS_REPO_REMOTE": "",
           "DMAAS_VAR_DIR": str(folder / "var"), "DMAAS_SECRET_KEY": secrets.token_urlsafe(64),
           "DMAAS_TIME_ZONE": django_settings.TIME_ZONE, "DMAAS_DEBUG": "0"}
    log = folder / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "celery"), "-A", "portal", "worker", "--pool=solo",
                                 "-Q", ",".join(QUEUES), "--hostname", f"{hostname}@%h", "--loglevel=INFO",
                                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or " ready." in log.read_text(), 60,
                 "the worker process to start", every=0.1)
        assert proc.poll() is None, log.read_text()[-3000:]
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _sleeping_backends(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() "
            "and state = 'active' and query like '%pg_sleep%'").fetchall()]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_node_leaves_the_run_to_another_and_every_relation_old_or_new(
        postgres_portal, postgres_warehouse, redis_url, tmp_path, settings):
    settings.DMAAS_NODE_HEARTBEAT_SECONDS = 1
    settings.DMAAS_NODE_STALE_SECONDS = 3
    wh = postgres_warehouse
    wh.run("create schema control", "create table control.knobs (delay float)",
           "insert into control.knobs values (30)")
    commit_to_main(KILL_FILES)
    schedule = Schedule.objects.get()
    with redis_broker(redis_url) as (app, prefix):
        with worker_process(tmp_path, database_url=postgres_portal, broker_url=redis_url, prefix=prefix,
                            warehouse_url=wh.url, hostname="killme") as killme:
            # the previous build, by the worker process: 10 rows
            runner.tasks.fire_schedule.delay(schedule.pk, slot_at(13).isoformat())
            first = finished_run(schedule, slot_at(13))
            assert first.status == "success", first.message
            assert wh.rows("select count(*) from analytics.slow") == [(10,)]

            commit_to_main({"models/slow.sql": SLOW_NEW})
            runner.tasks.fire_schedule.delay(schedule.pk, slot_at(14).isoformat())
            slow = wait_for(lambda: NodeRun.objects.filter(run__slot=slot_at(14), name="slow", status="running")
                            .exclude(worker="").first(), 30, "the worker process to start building slow")
            wait_for(lambda: _sleeping_backends(wh.url), 10, "slow's query to run in the warehouse")
            killme.send_signal(signal.SIGKILL)
            killme.wait(10)
        killed = NodeRun.objects.get(pk=slow.pk)
        assert killed.status == "running" and killed.attempts == 1  # nobody knows yet
        assert wh.rows("select count(*) from analytics.slow") == [(10,)]  # wholly old
        wh.run("update control.knobs set delay = 0")  # the next attempt is fast

        with worker(app, threads=2, hostname="second@test"):
            wait_for(lambda: NodeRun.objects.get(pk=slow.pk).heartbeat_at
                     < timezone.now() - dt.timedelta(seconds=settings.DMAAS_NODE_STALE_SECONDS + 0.5),
                     15, "the killed worker's heartbeat to go stale", every=0.2)
            assert wh.rows("select count(*) from analytics.slow") == [(10,)]  # still wholly old
            assert runs.reconcile()["requeued"] == 1
            second = finished_run(schedule, slot_at(14))

    assert second.status == "success", (second.message, statuses(second))
    assert statuses(second) == {"slow": "success", "after_slow": "success", "fast": "success"}
    slow = NodeRun.objects.get(pk=slow.pk)
    assert slow.attempts == 2 and slow.rows == 20
    assert wh.rows("select count(*) from analytics.slow") == [(20,)]  # wholly new
    assert wh.rows("select n from analytics.after_slow") == [(20,)]
    # The killed worker's statement goes on in the warehouse until it ends by itself (30 s); after it,
    # nothing it started may remain.
    wait_for(lambda: not _sleeping_backends(wh.url), 45, "the killed worker's query to end", every=0.5)
    assert wh.rows("select count(*) from analytics.slow") == [(20,)]
    leftovers = wh.rows("select table_schema, table_name from information_schema.tables "
                        f"where table_name like '{TEMPORARY}'")
    assert leftovers == [], f"temporary relations left in the warehouse: {leftovers}"


# --------------------------------------------------------------------------- 6: two beats, one slot


@pytest.mark.django_db(transaction=True)
def test_two_beats_and_a_direct_call_for_one_slot_make_one_run(duck, tmp_path):
    commit_to_main(FIVE)
    # The production schema exists, as after any first run: first nodes creating it at the same moment
    # collide (DuckDB: a catalog write-write conflict, retried), which would count as a second attempt.
    duck.run("create schema analytics")
    schedule = Schedule.objects.get()
    slot = slot_at(15)
    with filesystem_broker(tmp_path) as app:
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        with worker(app, threads=2):
            direct = runner.tasks.fire_schedule(schedule.pk, slot.isoformat())  # the task body, here
            run = finished_run(schedule, slot)
            # both messages were taken and done with (nothing left for a later worker)
            wait_for(lambda: not any((tmp_path / "broker" / "queue").iterdir()), 10, "the queue to empty")
    assert Run.objects.filter(schedule=schedule, slot=slot).count() == 1 and Run.objects.count() == 1
    assert run.status == "success", run.message
    assert direct.startswith(("run ", "no run"))
    nodes = list(NodeRun.objects.filter(run=run))
    assert len(nodes) == 5 and all(n.status == "success" and n.attempts == 1 for n in nodes)


