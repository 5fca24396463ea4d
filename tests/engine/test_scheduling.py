"""Which ready node starts first: the one on the critical path (the longest remaining chain of work)."""

import pytest

from runner.engine.execution import critical_path, execution_graph, node_cost
from runner.engine.graph import Graph
from tests.engine.helpers import build, compile_files

TABLE = "{{ config(materialized='table') }}"

# Two roots. `a_alone` sorts first by name and has nothing below it; `z_chain` heads a chain of three
# tables. Started first (ordering by depth and name), a_alone would leave the chain for last.
CHAIN = {
    "models/a_alone.sql": f"{TABLE}select 1 as id",
    "models/z_chain.sql": f"{TABLE}select 1 as id",
    "models/z_chain_2.sql": f"{TABLE}select id from {{{{ ref('z_chain') }}}}",
    "models/z_chain_3.sql": f"{TABLE}select id from {{{{ ref('z_chain_2') }}}}",
}


@pytest.fixture
def duck(tmp_path):
    return f"duckdb:///{tmp_path}/wh.duckdb"


def order(summary):
    return [r.name for r in summary.results]


def test_the_head_of_the_longest_chain_starts_first(duck):
    _, summary = build(CHAIN, duck, threads=1)
    assert summary.ok
    # with one thread the chain keeps the lead until what is left of it is no longer than a_alone
    # (then the name decides, for a stable order between runs)
    assert order(summary) == ["z_chain", "z_chain_2", "a_alone", "z_chain_3"]


def test_with_two_threads_the_chain_is_among_the_first_two(duck):
    # Ordered by depth and name, a_alone and b_alone would take both threads and z_chain would wait.
    files = dict(CHAIN, **{"models/b_alone.sql": f"{TABLE}select 2 as id"})
    _, summary = build(files, duck, threads=2)
    assert summary.ok
    first_two = {r.name for r in sorted(summary.results, key=lambda r: r.started_at)[:2]}
    assert "z_chain" in first_two


def test_views_and_tests_weigh_less_than_tables(duck):
    # Three views in a chain are cheaper than one table: the table starts first, though its name
    # sorts last and the chain is deeper.
    files = {
        "models/a_view.sql": "{{ config(materialized='view') }}select 1 as id",
        "models/a_view_2.sql": "{{ config(materialized='view') }}select id from {{ ref('a_view') }}",
        "models/a_view_3.sql": "{{ config(materialized='view') }}select id from {{ ref('a_view_2') }}",
        "models/z_table.sql": f"{TABLE}select 1 as id",
    }
    _, summary = build(files, duck, threads=1)
    assert summary.ok
    assert order(summary)[0] == "z_table"


def test_a_gating_test_on_the_critical_path_runs_before_other_work(duck):
    # In build, the test of z_chain sits between it and z_chain_2: it is on the critical path, so it
    # runs right after z_chain, before the unrelated a_alone.
    files = dict(
        CHAIN,
        **{
            "models/z.yml": "version: 2\nmodels:\n  - name: z_chain\n    columns:\n      - name: id\n"
            "        data_tests: [not_null]\n"
        },
    )
    _, summary = build(files, duck, threads=1)
    assert summary.ok
    assert order(summary)[:3] == ["z_chain", "not_null_z_chain_id", "z_chain_2"]


def test_estimates_from_an_earlier_run_override_the_guesses():
    manifest = compile_files(CHAIN)
    graph = execution_graph(manifest, set(manifest.nodes), "build")
    guessed = critical_path(graph, lambda u: node_cost(manifest, u))
    assert guessed["model.shop.z_chain"] == 3.0 and guessed["model.shop.a_alone"] == 1.0
    slow = {"model.shop.a_alone": 60.0}
    timed = critical_path(graph, lambda u: node_cost(manifest, u, slow))
    assert timed["model.shop.a_alone"] == 60.0 > timed["model.shop.z_chain"]


def test_critical_path_adds_the_costliest_branch():
    graph = Graph({"a": [], "b": ["a"], "c": ["a"], "d": ["c"]})
    cost = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0}
    assert critical_path(graph, cost.__getitem__) == {"a": 6.0, "b": 5.0, "c": 2.0, "d": 1.0}
