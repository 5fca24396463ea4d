"""A model's time limit cancels its query (issue 7, item 2), and a worker keeps the DuckDB file open
between its nodes (lingering) without keeping another process from it (the per-node overhead)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from runner import runs
from runner import warehouse as wh
from runner.models import Incident, NodeRun, Schedule
from tests.personas import make_user
from tests.portal.test_settings import PRODUCTION, start_django
from tests.runner.test_runs import commit_to_main, drain, statuses

ROOT = Path(__file__).resolve().parents[2]
SLOW = {  # a query that runs for minutes on either warehouse
    "duckdb": "select count(*)::int as id from range(100000000000) a",
    "postgres": "select count(*)::int as id from generate_series(1, 10000000000) a",
}


def slot(hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, 2, hour, tzinfo=dt.UTC)


@pytest.fixture
def admin(db):
    return make_user("adam", "admin")


def _still_running(warehouse, marker: str) -> list[tuple]:
    """PostgreSQL backends of the warehouse's database still running a statement with `marker`."""
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        return conn.execute("select pid from pg_stat_activity where datname = current_database() and "
                            "pid <> pg_backend_pid() and state = 'active' and query like %s",
                            (f"%{marker}%",)).fetchall()


@pytest.mark.django_db
def test_a_model_past_its_time_limit_times_out_its_query_is_cancelled_and_the_old_table_serves(
        warehouse, settings, admin):
    """RELIABILITY F7: status "timeout" (not "error"), not retried even when its meta asks for retries,
    its query cancelled, its temporary relation gone, the old table serving, the child skipped, an
    incident of its own cause, and the Retry button takes it up."""
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select 7 as id",
                    "models/b.sql": "select * from {{ ref('a') }}"})
    assert drain(runs.fire_schedule(Schedule.objects.get().pk, slot(9))).status == "success"
    settings.DMAAS_MODEL_TIME_LIMIT = 1
    commit_to_main({"models/a.sql": "{{ config(materialized='table', meta={'retries': 2}) }}" + SLOW[warehouse.kind]})
    started = time.monotonic()
    run = drain(runs.fire_schedule(Schedule.objects.get().pk, slot(10)))
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"the query was not cancelled: the run took {elapsed:.1f} s"
    assert statuses(run) == {"a": "timeout", "b": "skipped"}
    assert run.status == "failed" and run.message == "0 of 2 nodes passed, 1 failed, 1 skipped"
    node = NodeRun.objects.get(run=run, name="a")
    assert node.message.startswith("Timed out after 1 s") and node.attempts == 1  # not retried
    assert NodeRun.objects.get(run=run, name="b").cause == "model.data_models.a"
    if warehouse.kind == "postgres":
        assert _still_running(warehouse, "range(") == [] and _still_running(warehouse, "generate_series(1, 1") == []
    assert warehouse.rows("select id from analytics.a") == [(7,)]  # wholly old
    leftovers = warehouse.rows("select table_name from information_schema.tables where table_schema = 'analytics' "
                               "and table_name not in ('a', 'b')")
    assert leftovers == []  # the temporary relation went with the rollback
    incident = Incident.objects.get(subject="a")
    assert (incident.cause, incident.status) == ("timeout", "open") and "Timed out" in incident.error
    # the Retry button re-runs the timed-out model and what it skipped; a good build resolves the incident
    settings.DMAAS_MODEL_TIME_LIMIT = 900
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select 8 as id"})
    retry = drain(runs.retry_run(admin, run))
    assert retry.select == "a b" and statuses(retry) == {"a": "success", "b": "success"}
    incident.refresh_from_db()
    assert incident.status == "resolved"


@pytest.mark.django_db
def test_meta_time_limit_shortens_the_default_for_one_model(duck):
    commit_to_main({"models/slow.sql": "{{ config(materialized='table', meta={'time_limit': 1}) }}" + SLOW["duckdb"],
                    "models/quick.sql": "select 1 as id"})
    started = time.monotonic()
    run = drain(runs.fire_schedule(Schedule.objects.get().pk, slot(11)))
    assert time.monotonic() - started < 20
    assert statuses(run) == {"slow": "timeout", "quick": "success"}
    assert NodeRun.objects.get(run=run, name="slow").message.startswith("Timed out after 1 s")


def test_the_time_limit_from_meta_is_read_safely(settings):
    settings.DMAAS_MODEL_TIME_LIMIT = 900
    seconds = runs._TimeLimit.seconds_for
    assert seconds({}) == 900 and seconds({"time_limit": 60}) == 60
    assert seconds({"time_limit": "soon"}) == 900 and seconds({"time_limit": -5}) == 900
    assert seconds({"time_limit": 5000}) == 900  # may shorten, never pass Celery's backstop


@pytest.mark.parametrize("model_limit", ["900", "7100"])
def test_redis_never_hands_a_running_node_to_a_second_worker(tmp_path, model_limit):
    """Redis redelivers an unacknowledged message after its visibility timeout: it must exceed the
    run_node task's hard limit (the model's limit + 2 minutes), or the settings refuse to start."""
    code = ("import json; from django.conf import settings as s; from runner.tasks import run_node; "
            "print(json.dumps({'visibility': s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], "
            "'hard': run_node.time_limit, 'soft': run_node.soft_time_limit}))")
    env = PRODUCTION | {"CELERY_BROKER_URL": "redis://redis.internal:6379/0", "DMAAS_MODEL_TIME_LIMIT": model_limit}
    result = start_django(tmp_path, env, code)
    if model_limit == "900":
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["visibility"] > found["hard"] == 1020 and found["soft"] == 960
    else:  # 7100 + 120 s is past the default visibility timeout of 7200 s
        assert result.returncode != 0 and "DMAAS_REDIS_VISIBILITY_TIMEOUT must exceed" in result.stderr
        env["DMAAS_REDIS_VISIBILITY_TIMEOUT"] = "9000"
        result = start_django(tmp_path, env, code)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["hard"] == 7220


# --------------------------------------------------------------------------- lingering


@pytest.mark.django_db
def test_a_workers_nodes_share_one_open_file_and_its_catalog(duck, settings):
    settings.DMAAS_WAREHOUSE_LINGER_SECONDS = 30
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select 1 as id",
                    "models/b.sql": "select * from {{ ref('a') }}"})
    warehouse = wh.get_warehouse()
    run = drain(runs.fire_schedule(Schedule.objects.get().pk, slot(12)))
    assert run.status == "success"
    host = warehouse.host
    assert host.mode == "rw" and host.users == 0  # still open, for the next node of this worker
    assert host.catalog is not None and host.catalog.get(("analytics", "a")) == "table"
    opened = host._generation
    assert drain(runs.fire_schedule(Schedule.objects.get().pk, slot(13))).status == "success"
    assert host._generation == opened  # not closed and reopened between the nodes
    wh.close_lingering()
    assert host.mode is None and host.catalog is None


def test_a_lingering_owner_hands_the_file_to_another_process_at_once(tmp_path):
    path = str(tmp_path / "w.duckdb")
    host = wh.DuckDBHost(path)
    with host.write_lease(10, linger=60) as db:
        db.execute("create table t as select 1 as id")
    assert host.mode == "rw"  # lingering
    # another process writes: it asks the owner to yield instead of waiting out the 60 s
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from runner.warehouse import DuckDBHost\n"
            "t = time.monotonic()\n"
            "with DuckDBHost(sys.argv[1]).write_lease(30) as db:\n"
            "    db.execute('insert into t values (2)')\n"
            "print(round(time.monotonic() - t, 3))\n")
    out = subprocess.run([sys.executable, "-c", code, path, str(ROOT)], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 5, f"the other process waited {out.stdout.strip()} s"
    assert host.mode is None  # it yielded
    with host.write_lease(10) as db:
        assert db.execute("select id from t order by id").fetchall() == [(1,), (2,)]
    assert host.mode is None  # no linger asked: closed at once


def test_a_preview_of_another_process_is_served_by_a_lingering_owner(tmp_path):
    path = str(tmp_path / "w.duckdb")
    host = wh.DuckDBHost(path)
    with host.write_lease(10, linger=60) as db:
        db.execute("create table t as select 41 + 1 as answer")
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from runner.warehouse import DuckDBHost\n"
            "print(DuckDBHost(sys.argv[1]).preview('select answer from t', 10, 5000, 10).rows)\n")
    out = subprocess.run([sys.executable, "-c", code, path, str(ROOT)], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[42]]"
    assert host.mode == "rw"  # a preview does not end the linger
    host.close_lingering()
    assert host.mode is None
