"""RELIABILITY F1 for deploys: a worker killed (SIGKILL) mid-deploy leaves every production relation
wholly old or wholly new, and no half-built relation behind; running the deploy again completes it.

The deploy runs the engine's gated build (runner/deploy.py) in a separate process, as a worker does;
the test kills that process while a slow model is being built, then reads the warehouse.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.engine.helpers import build, statuses

ROOT = Path(__file__).resolve().parents[2]
V1 = {
    "models/fast.sql": "{{ config(materialized='table') }}select 1 as id",
    "models/orders.sql": "{{ config(materialized='table') }}select * from (values (1), (2), (3)) as t(id)",
    "models/orders_view.sql": "select id from {{ ref('orders') }}",
    "models/schema.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n"
    "        data_tests: [unique]\n",
}
NEW_ORDERS = "{{ config(materialized='table') }}select * from (values (1), (2), (3), (4), (5)) as t(id)"
SLOW = {
    # DuckDB: a cross product it has to count; PostgreSQL: a sleep. Either runs for many seconds.
    "duckdb": "{{ config(materialized='table') }}select * from (values (1), (2), (3), (4), (5)) as t(id) "
    "where (select count(*) from range(200000) a, range(200000) b where a.range + b.range = -1) = 0",
    "postgres": "{{ config(materialized='table') }}select * from (values (1), (2), (3), (4), (5)) as t(id) "
    "where (select count(*) from pg_sleep(60)) = 1",
}
WORKER = """
import json, sys
from runner.engine.adapters import adapter_for
from runner.engine.execution import RunOptions, Executor
from tests.engine.helpers import project
from runner.engine.compiler import Target, compile_project
url, files = sys.argv[1], json.loads(sys.argv[2])
adapter = adapter_for(url)
manifest = compile_project(project(files), Target(), set(adapter.relations()))
def on_result(result):
    print(result.name, result.status, flush=True)
print("ready", flush=True)
Executor(manifest, adapter, RunOptions(threads=1, gate=True, on_result=on_result)).run(set(manifest.nodes))
print("finished", flush=True)
"""


def _rows(url: str, sql: str):
    if url.startswith("duckdb"):
        con = duckdb.connect(url[len("duckdb:///") :])
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _kill_mid_deploy(url: str, kind: str) -> None:
    _, first = build(V1, url, gate=True)
    assert first.ok
    files = dict(V1, **{"models/orders.sql": SLOW[kind]})
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, json.dumps(files)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        # orders, with a child below it, has the longest remaining path: it is built first
        line = worker.stdout.readline()
        assert line.startswith("ready"), line + worker.stderr.read()
        time.sleep(2)
        assert worker.poll() is None, "the slow model finished before the kill"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    if kind == "postgres":  # the server ends the dead client's session (its transaction rolls back)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                         "where datname = current_database() and pid <> pg_backend_pid()")
    # wholly old, and nothing half-built left beside it
    assert _rows(url, "select count(*) from analytics.orders") == [(3,)]
    assert _rows(url, "select count(*) from analytics.orders_view") == [(3,)]
    leftovers = _rows(url, "select table_name from information_schema.tables where table_schema = 'analytics' "
                      "order by table_name")
    assert [r[0] for r in leftovers] == ["fast", "orders", "orders_view"]
    # the deploy delivered again completes: wholly new
    _, again = build(dict(V1, **{"models/orders.sql": NEW_ORDERS}), url, gate=True)
    assert statuses(again)["orders"] == "success"
    assert _rows(url, "select count(*) from analytics.orders_view") == [(5,)]


def test_a_worker_killed_mid_deploy_leaves_duckdb_wholly_old(tmp_path):
    _kill_mid_deploy(f"duckdb:///{tmp_path}/wh.duckdb", "duckdb")


@pytest.mark.postgres
def test_a_worker_killed_mid_deploy_leaves_postgres_wholly_old(postgres_url):
    db = f"dmaas_kill_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'create database "{db}"')
    try:
        _kill_mid_deploy(postgres_url.rsplit("/", 1)[0] + "/" + db, "postgres")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{db}" with (force)')
