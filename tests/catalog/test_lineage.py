"""Lineage: the model graph around a node from the index, and column lineage from the compiled SQL."""

from __future__ import annotations

import datetime as dt

import pytest

from models_service.errors import InvalidInput, NotFound
from models_service.git_store import MAIN_REF, Edit
from models_service.models import IndexedNode
from models_service.repo import PORTAL
from runner import lineage
from runner.engine.compiler import Compiler, Target
from runner.engine.lineage import ColumnKey, ColumnLineage
from runner.engine.project import MappingSource, load_project
from runner.models import Measurement

pytestmark = pytest.mark.django_db


def layers(graph):
    return {n["name"]: n["layer"] for n in graph["nodes"]}


def test_the_graph_goes_up_and_down_as_far_as_asked(project, analyst):
    graph = lineage.model_graph(analyst, "orders", up=2, down=2)
    assert layers(graph) == {"shop.orders": -2, "shop.customers": -2, "stg_orders": -1, "stg_customers": -1,
                             "orders": 0, "revenue": 1}
    assert {(e["from"], e["to"]) for e in graph["edges"]} == {
        ("shop.orders", "stg_orders"), ("shop.customers", "stg_customers"), ("stg_orders", "orders"),
        ("stg_customers", "orders"), ("orders", "revenue")}
    near = lineage.model_graph(analyst, "orders", up=1, down=0)
    assert layers(near) == {"stg_orders": -1, "stg_customers": -1, "orders": 0}
    assert near["more_above"] is True and near["more_below"] is True  # shop.* above, revenue below
    assert lineage.model_graph(analyst, "revenue", up=0, down=0)["nodes"][0]["focus"] is True


def test_a_node_read_twice_sits_left_of_both_its_readers(db, analyst):
    # a -> b -> c and a -> c: a is two layers above c, not one, so every edge points right
    for name, deps in (("a", []), ("b", ["a"]), ("c", ["a", "b"]), ("d", ["c"])):
        IndexedNode.objects.create(ref="main", kind="model", name=name, depends_on=deps)
    assert layers(lineage.model_graph(analyst, "c", up=3, down=3)) == {"a": -2, "b": -1, "c": 0, "d": 1}
    assert layers(lineage.model_graph(analyst, "a", up=0, down=3)) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_a_parent_the_index_does_not_hold_is_shown_as_missing(db, analyst):
    IndexedNode.objects.create(ref="main", kind="model", name="x", depends_on=["gone"])
    [missing] = [n for n in lineage.model_graph(analyst, "x")["nodes"] if n["name"] == "gone"]
    assert missing["kind"] == "missing" and missing["known"] is False


def test_bad_depths_and_unknown_names_are_refused(project, analyst):
    for bad in ("11", "-1", "two"):
        with pytest.raises(InvalidInput, match="0 to 10"):
            lineage.depth_param(bad, "up", 2)
    assert lineage.depth_param(None, "up", 2) == 2
    with pytest.raises(NotFound):
        lineage.model_graph(analyst, "nothing")


def test_column_lineage_follows_a_column_through_two_models_to_its_source(project, analyst):
    traced = lineage.column_lineage(analyst, "revenue", "revenue")
    by_id = {n["id"]: n for n in traced["nodes"]}
    assert {k: v["layer"] for k, v in by_id.items()} == {
        "revenue.revenue": 0, "orders.amount": -1, "stg_orders.amount_cents": -2, "shop.orders.amount": -3}
    assert by_id["orders.amount"]["expression"] == "o.amount_cents / 100.0"
    assert by_id["stg_orders.amount_cents"]["transform"] == "derived"
    assert by_id["shop.orders.amount"]["kind"] == "source"
    assert {(e["from"], e["to"]) for e in traced["edges"]} == {
        ("orders.amount", "revenue.revenue"), ("stg_orders.amount_cents", "orders.amount"),
        ("shop.orders.amount", "stg_orders.amount_cents")}
    assert traced["errors"] == []


def test_column_lineage_finds_the_columns_below_that_read_it(project, analyst):
    users = lineage.column_users(analyst, "shop.customers", "email")
    assert [(u["id"], u["transform"]) for u in users] == [("stg_customers.email", "copy"),
                                                          ("orders.customer_email", "rename")]
    seed = lineage.column_lineage(analyst, "countries", "label")
    assert [n["id"] for n in seed["downstream"]] == ["country_names.country"]


def test_an_unknown_column_is_a_400_that_lists_the_columns(project, analyst):
    with pytest.raises(InvalidInput, match="has no column nope: it has order_id, customer_id"):
        lineage.column_lineage(analyst, "orders", "nope")
    with pytest.raises(InvalidInput, match="Choose a column"):
        lineage.column_lineage(analyst, "orders", " ")


def test_select_star_is_expanded_from_what_the_last_build_measured(project, analyst):
    project.commit(MAIN_REF, lambda snap: Edit({"models/everything.sql": b"select * from {{ ref('stg_orders') }}\n"},
                                               "star"), author=PORTAL)
    Measurement.objects.create(model="stg_orders", kind="production", schema="analytics",
                               measured_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                               columns=[{"name": "order_id"}, {"name": "customer_id"}, {"name": "amount_cents"}])
    traced = lineage.column_lineage(analyst, "everything", "customer_id")
    assert [n["id"] for n in traced["upstream"]] == ["shop.orders.customer_id", "stg_orders.customer_id"]


def test_ephemeral_models_are_passed_through():
    files = {
        "dbt_project.yml": "name: dmaas\nversion: '1.0'\nprofile: x\n",
        "models/a.sql": "select 1 as id, 2 as v",
        "models/e.sql": "{{ config(materialized='ephemeral') }}select id, v * 2 as w from {{ ref('a') }}",
        "models/b.sql": "select id, w + 1 as z from {{ ref('e') }}",
    }
    manifest = Compiler(load_project(MappingSource(files)), Target(name="prod", schema="analytics",
                                                                   type="duckdb")).compile()
    tracer = ColumnLineage(manifest)
    up = tracer.upstream("model.dmaas.b", "z")
    assert list(up.steps) == [ColumnKey("model.dmaas.b", "z"), ColumnKey("model.dmaas.a", "v")]
    down = tracer.downstream("model.dmaas.a", "v")
    assert down.children == {ColumnKey("model.dmaas.a", "v"): [ColumnKey("model.dmaas.b", "z")]}
