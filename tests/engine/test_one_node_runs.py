"""One-node runs as a worker does them (runner.nodes: a new Executor per node on a shared adapter):
the same results as before without a thread pool, the schema made once per catalog, and each
model's SQL parsed once per kept manifest."""

import threading

import pytest

from runner.engine import sqlcheck
from runner.engine.adapters import adapter_for
from runner.engine.execution import Executor, RunOptions, schema_missing
from tests.engine.helpers import compile_files

FILES = {
    "seeds/people.csv": "id,name\n1,ann\n2,bob\n2,cy\n",
    "models/stg_people.sql": "select * from {{ ref('people') }}",
    "models/people_table.sql": "{{ config(materialized='table') }}select id, name from {{ ref('stg_people') }}",
    "models/counts.sql": "{{ config(materialized='table') }}select count(*) as n from {{ ref('people_table') }}",
    "models/names.sql": "select name from {{ ref('stg_people') }}",
    "models/people.yml": "version: 2\nmodels:\n  - name: people_table\n    columns:\n      - name: id\n"
    "        data_tests: [unique, not_null]\n",
}


@pytest.fixture
def duck(tmp_path):
    return f"duckdb:///{tmp_path}/wh.duckdb"


def _run(manifest, adapter, threads, gate=False, selected=None):
    summary = Executor(manifest, adapter, RunOptions(command="build", threads=threads, gate=gate)).run(
        set(selected or manifest.nodes))
    return [(r.name, r.status, r.cause, r.failures) for r in summary.results]


@pytest.mark.parametrize("gate", [False, True])
def test_one_thread_runs_inline_with_the_results_of_a_pool(tmp_path, gate):
    manifest = compile_files(FILES)
    outcomes = {}
    for threads in (1, 2):
        adapter = adapter_for(f"duckdb:///{tmp_path}/wh{threads}.duckdb")
        seen: set[int] = set()
        execute = adapter.execute

        def spy(sql, params=None, execute=execute, seen=seen):
            seen.add(threading.get_ident())
            return execute(sql, params)

        adapter.execute = spy
        try:
            outcomes[threads] = _run(manifest, adapter, threads, gate)
        finally:
            adapter.close()
        if threads == 1:  # no pool: every statement on the calling thread
            assert seen == {threading.get_ident()}
    assert sorted(outcomes[1], key=str) == sorted(outcomes[2], key=str)
    by_name = {name: (status, cause) for name, status, cause, _ in outcomes[1]}
    assert by_name["unique_people_table_id"][0] == "fail"
    # gated, the failing test rolls its model back (an error) and that skips the children
    cause = "model.shop.people_table" if gate else "test.shop.unique_people_table_id"
    assert by_name["counts"] == ("skipped", cause)
    assert by_name["names"][0] == "success"
    # threads=1 keeps the critical-path order of a pool of one: a parent always before its children
    order = [name for name, *_ in outcomes[1]]
    assert order.index("people") < order.index("stg_people") < order.index("people_table")


def test_the_schema_is_created_once_per_catalog_and_again_when_it_was_dropped(duck):
    manifest = compile_files(FILES)
    adapter = adapter_for(duck)
    statements: list[str] = []
    execute = adapter.execute

    def spy(sql, params=None):
        statements.append(sql)
        return execute(sql, params)

    adapter.execute = spy
    try:
        _run(manifest, adapter, 1, selected={"seed.shop.people"})
        assert any(s.startswith("create schema") for s in statements)  # nothing in the catalog yet
        statements.clear()
        # a worker's next node: a new Executor on the kept catalog, which shows the schema
        assert _run(manifest, adapter, 1, selected={"model.shop.stg_people"})[0][1] == "success"
        assert not any(s.startswith("create schema") for s in statements)

        # dropped behind the catalog's back (another connection): the node recreates it and passes
        schema = manifest.relations["model.shop.stg_people"][0]
        other = adapter._database().cursor()
        other.execute(f'drop schema "{schema}" cascade')
        other.close()
        assert adapter.schema_known(schema)  # the catalog does not know
        statements.clear()
        result = _run(manifest, adapter, 1, selected={"seed.shop.people"})
        assert result[0][1] == "success", result
        assert sum(s.startswith("create schema") for s in statements) == 1
        assert _run(manifest, adapter, 1, selected={"model.shop.stg_people"})[0][1] == "success"

        # dropped through the adapter (runner.ci.drop_schema): the catalog forgets it, no failed try
        adapter.drop_schema(schema)
        assert not adapter.schema_known(schema)
        statements.clear()
        assert _run(manifest, adapter, 1, selected={"seed.shop.people"})[0][1] == "success"
        assert statements[0].startswith("create schema")
    finally:
        adapter.close()


def test_a_schema_missing_error_is_told_apart():
    assert schema_missing(Exception("Catalog Error: Schema with name ci_5 does not exist!"), "ci_5")
    assert schema_missing(Exception('schema "ci_5" does not exist\nLINE 1: ...'), "ci_5")
    assert not schema_missing(Exception("Catalog Error: Schema with name ci_55 does not exist!"), "ci_5")
    assert not schema_missing(Exception("Catalog Error: Table with name ci_5 does not exist!"), "ci_5")


def test_a_kept_manifest_parses_each_model_once(monkeypatch, duck):
    manifest = compile_files(FILES)
    calls: list[str] = []
    check = sqlcheck.check_query

    def counting(sql, dialect):
        calls.append(sql)
        return check(sql, dialect)

    monkeypatch.setattr("runner.engine.compiler.check_query", counting)
    uid = "model.shop.names"
    manifest.check_sql(uid)
    manifest.check_sql(uid)
    assert len(calls) == 1
    manifest.compiled[uid] = "select 1 as name from"  # another SQL is checked anew, and fails
    with pytest.raises(Exception, match="syntax"):
        manifest.check_sql(uid)
    with pytest.raises(Exception, match="syntax"):
        manifest.check_sql(uid)
    assert len(calls) == 2
