"""Running a manifest on a real DuckDB and a real PostgreSQL: order, atomic swaps, failures and skips."""

import threading
import time

import duckdb
import psycopg
import pytest

from runner.engine.adapters import adapter_for
from runner.engine.execution import Executor, RunOptions
from tests.engine.helpers import build, compile_files, statuses

LAYERED = {
    "seeds/people.csv": "id,name,joined,score,active\n1,ann,2024-01-05,1.5,true\n2,bob,2024-02-01,,false\n3,cy,,2,true\n",
    "models/stg_people.sql": "select * from {{ ref('people') }}",
    "models/people_table.sql": "{{ config(materialized='table') }}select id, name from {{ ref('stg_people') }}",
    "models/eph.sql": "{{ config(materialized='ephemeral') }}select id from {{ ref('people_table') }}",
    "models/counts.sql": "{{ config(materialized='table') }}select count(*) as n from {{ ref('eph') }}",
    "models/people.yml": "version: 2\nmodels:\n  - name: people_table\n    columns:\n      - name: id\n"
    "        data_tests: [unique, not_null]\n",
}


@pytest.fixture
def duck(tmp_path):
    return f"duckdb:///{tmp_path}/wh.duckdb"


def rows(url, sql):
    con = duckdb.connect(url[len("duckdb:///") :])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_seed_types_follow_dbt_inference(duck):
    _, summary = build({"seeds/people.csv": LAYERED["seeds/people.csv"]}, duck)
    assert statuses(summary) == {"people": "success"}
    types = rows(
        duck,
        "select column_name, data_type from information_schema.columns "
        "where table_name = 'people' order by ordinal_position",
    )
    assert types == [
        ("id", "INTEGER"),
        ("name", "VARCHAR"),
        ("joined", "DATE"),
        ("score", "DOUBLE"),
        ("active", "BOOLEAN"),
    ]


def test_a_layered_project_builds_in_dependency_order(duck):
    manifest, summary = build(LAYERED, duck)
    assert summary.ok, [(r.name, r.message) for r in summary.results]
    order = [r.name for r in summary.results]
    assert (
        order.index("people")
        < order.index("stg_people")
        < order.index("people_table")
        < order.index("counts")
    )
    assert order.index("unique_people_table_id") < order.index("counts")  # build: tests gate children
    assert "eph" not in order  # ephemeral models are inlined, not run
    assert rows(duck, "select n from analytics.counts") == [(3,)]
    table = next(r for r in summary.results if r.name == "people_table")
    assert table.rows == 3 and table.relation == "analytics.people_table"


def test_a_failed_table_build_leaves_the_old_table_serving(duck):
    build(LAYERED, duck)
    broken = dict(
        LAYERED,
        **{
            "models/people_table.sql": "{{ config(materialized='table') }}select id, cast(name as integer) as name "
            "from {{ ref('stg_people') }}"
        },
    )
    _, summary = build(broken, duck)
    st = statuses(summary)
    assert st["people_table"] == "error" and "Conversion Error" in next(
        r.message for r in summary.results if r.name == "people_table"
    )
    assert st["counts"] == "skipped" and st["unique_people_table_id"] == "skipped"
    skipped = next(r for r in summary.results if r.name == "counts")
    assert skipped.cause == "model.shop.people_table" and "people_table failed" in skipped.message
    assert rows(duck, "select count(*) from analytics.people_table") == [(3,)]
    leftovers = rows(duck, "select table_name from information_schema.tables where table_name like '%dmaas%'")
    assert leftovers == []


def test_a_failing_test_skips_the_children_in_build(duck):
    files = dict(
        LAYERED,
        **{
            "models/people.yml": LAYERED["models/people.yml"].replace(
                "[unique, not_null]",
                "[unique, not_null]\n      - name: name\n        data_tests:\n          - accepted_values:\n              values: [ann]",
            )
        },
    )
    _, summary = build(files, duck)
    st = statuses(summary)
    assert st["accepted_values_people_table_name__ann"] == "fail"
    assert st["counts"] == "skipped"
    assert not summary.ok


def test_warn_severity_does_not_block(duck):
    files = dict(
        LAYERED,
        **{
            "models/people.yml": "version: 2\nmodels:\n  - name: people_table\n    columns:\n"
            "      - name: name\n        data_tests:\n          - accepted_values:\n"
            "              values: [ann]\n              config:\n                severity: warn\n"
        },
    )
    _, summary = build(files, duck)
    st = statuses(summary)
    assert st["accepted_values_people_table_name__ann"] == "warn"
    assert st["counts"] == "success" and summary.ok


def test_incremental_appends_and_replaces_by_unique_key(duck):
    files = {
        "seeds/src.csv": "id,v\n1,a\n2,b\n",
        "models/inc.sql": "{{ config(materialized='incremental', unique_key='id') }}select id, v from {{ ref('src') }}"
        "{% if is_incremental() %} where id >= (select max(id) from {{ this }}){% endif %}",
    }
    build(files, duck)
    files["seeds/src.csv"] = "id,v\n1,a\n2,B\n3,c\n"
    _, summary = build(files, duck)
    assert summary.ok
    assert rows(duck, "select id, v from analytics.inc order by id") == [(1, "a"), (2, "B"), (3, "c")]


def test_readers_never_see_a_missing_table_during_rebuilds(duck):
    """RELIABILITY D2: a reader polling during rebuilds sees the old or the new table, never neither."""
    files = {"models/t.sql": "{{ config(materialized='table') }}select * from range(50000)"}
    build(files, duck, threads=1)
    adapter = adapter_for(duck)
    errors, counts = [], set()
    stop = threading.Event()

    def reader():
        cur = adapter._database().cursor()
        while not stop.is_set():
            try:
                counts.add(cur.execute("select count(*) from analytics.t").fetchone()[0])
            except duckdb.Error as exc:
                errors.append(str(exc))

    from runner.engine.compiler import Target, compile_project
    from runner.engine.execution import Executor, RunOptions
    from tests.engine.helpers import project

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(5):
            manifest = compile_project(project(files), Target(), set(adapter.relations()))
            summary = Executor(manifest, adapter, RunOptions(threads=1)).run(set(manifest.nodes))
            assert summary.ok
            time.sleep(0.01)
    finally:
        stop.set()
        t.join()
        adapter.close()
    assert errors == [] and counts == {50000}


@pytest.mark.postgres
def test_the_same_project_builds_on_postgres(postgres_url):
    db = f"dmaas_exec_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'create database "{db}"')
    url = postgres_url.rsplit("/", 1)[0] + "/" + db
    try:
        _, summary = build(LAYERED, url)
        assert summary.ok, [(r.name, r.message) for r in summary.results]
        broken = dict(
            LAYERED, **{"models/people_table.sql": "{{ config(materialized='table') }}select 1/0 as id"}
        )
        _, summary = build(broken, url)
        assert statuses(summary)["people_table"] == "error"
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from analytics.people_table").fetchone() == (3,)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{db}" with (force)')


def test_a_syntax_error_fails_the_node_before_the_warehouse_sees_it(duck):
    files = dict(LAYERED, **{"models/people_table.sql": "{{ config(materialized='table') }}\n"
                             "select id,\nfrom {{ ref('stg_people') }} where"})
    _, summary = build(files, duck)
    result = next(r for r in summary.results if r.name == "people_table")
    assert result.status == "error"
    assert result.message.startswith("models/people_table.sql:3: SQL syntax error")
    assert statuses(summary)["counts"] == "skipped"
    assert rows(duck, "select count(*) from information_schema.tables where table_name = 'people_table'") == [(0,)]


INCREMENTAL_FROM_SOURCE = {
    "models/sources.yml": "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: events\n",
    "models/inc.sql": "{{ config(materialized='incremental') }}select id from {{ source('raw', 'events') }}"
    "{% if is_incremental() %} where id > (select max(id) from {{ this }}){% endif %}",
}


def _events(url: str, sql: str) -> None:
    con = duckdb.connect(url[len("duckdb:///"):])
    try:
        con.execute(sql)
    finally:
        con.close()


def _run_manifest(manifest, url: str):
    adapter = adapter_for(url)
    try:
        return Executor(manifest, adapter, RunOptions(command="build", threads=1)).run(set(manifest.nodes))
    finally:
        adapter.close()


def test_an_incremental_model_compiled_before_its_table_existed_appends_only_new_rows(duck):
    """A production run compiles main once and keeps the manifest (per process, per commit): the
    model was rendered with is_incremental() false. When its table exists at build time it must get
    the incremental SQL, as dbt renders at run time; it used to get the full select appended."""
    _events(duck, "create schema raw; create table raw.events as select * from range(1, 4) t(id)")
    manifest = compile_files(INCREMENTAL_FROM_SOURCE)  # nothing exists yet
    assert _run_manifest(manifest, duck).ok
    _events(duck, "insert into raw.events values (4), (5)")
    summary = _run_manifest(manifest, duck)  # the same manifest, the next hour
    assert summary.ok, [(r.name, r.message) for r in summary.results]
    assert rows(duck, "select id from analytics.inc order by id") == [(i,) for i in range(1, 6)]
    assert "where id > (select max(id)" in manifest.sql_for("model.shop.inc", incremental=True)
    assert "where" not in manifest.compiled["model.shop.inc"]  # what pages show: as compiled


def test_an_incremental_model_compiled_while_its_table_existed_is_built_whole_once_it_is_gone(duck):
    _events(duck, "create schema raw; create table raw.events as select * from range(1, 4) t(id)")
    manifest = compile_files(INCREMENTAL_FROM_SOURCE, existing={("analytics", "inc")})
    summary = _run_manifest(manifest, duck)  # the table is not there: a first build, not an append
    assert summary.ok, [(r.name, r.message) for r in summary.results]
    assert rows(duck, "select id from analytics.inc order by id") == [(1,), (2,), (3,)]
