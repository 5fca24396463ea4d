"""Catalog search: ranked across models, seeds, sources, columns, descriptions, tags and owners."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_service import index
from models_service.errors import InvalidInput
from models_service.models import IndexedColumn, IndexedNode, IndexedTag

pytestmark = pytest.mark.django_db


def node(name, *, kind="model", description="", owner="", tags=(), columns=(), ref="main", deleted=False):
    n = IndexedNode.objects.create(ref=ref, kind=kind, name=name, description=description, owner=owner,
                                   deleted=deleted)
    for i, c in enumerate(columns):
        IndexedColumn.objects.create(node=n, name=c, position=i)
    for t in tags:
        IndexedTag.objects.create(node=n, tag=t)
    return n


def names(user, query, **kw):
    return [h.node.name for h in index.search(user, query, **kw)]


def test_ranking_is_exact_then_prefix_then_contains_then_tag_owner_column_description(analyst):
    node("z_by_description", description="All about revenue, per day")
    node("a_by_column", columns=["id", "revenue"])
    node("b_by_partial_column", columns=["revenue_eur"])
    node("c_by_owner", owner="revenue-team")
    node("d_by_tag", tags=["revenue"])
    node("monthly_revenue")
    node("revenue_daily")
    node("revenue")
    node("unrelated", description="nothing", columns=["id"])
    node("revenue_on_a_branch", ref="changes/1-x")
    node("revenue_removed", deleted=True)
    assert names(analyst, "revenue") == [
        "revenue", "revenue_daily", "monthly_revenue", "d_by_tag", "c_by_owner", "a_by_column",
        "b_by_partial_column", "z_by_description"]


def test_each_hit_says_why_it_matched(analyst):
    node("orders", columns=["customer_email"], tags=["finance"])
    node("customers", columns=["customer_email"], owner="crm")
    hits = {h.node.name: h for h in index.search(analyst, "customer_email")}
    assert (hits["orders"].reason, hits["orders"].column) == ("column", "customer_email")
    [hit] = index.search(analyst, "finance")
    assert (hit.reason, hit.matched) == ("tag", "finance")
    [hit] = index.search(analyst, "crm")
    assert (hit.reason, hit.matched) == ("owner", "crm")


def test_ties_break_by_name_and_case_does_not_matter(analyst):
    node("b_orders")
    node("a_orders")
    node("c_orders")
    assert names(analyst, "ORDERS") == ["a_orders", "b_orders", "c_orders"]


def test_a_source_is_found_by_its_table_name_and_kind_narrows(analyst):
    node("shop.orders", kind="source")
    node("orders")
    node("orders_seed", kind="seed")
    assert names(analyst, "orders") == ["orders", "shop.orders", "orders_seed"]
    assert names(analyst, "orders", kind="source") == ["shop.orders"]
    assert names(analyst, "orders kind:seed") == ["orders_seed"]


def test_several_words_must_each_match_and_filters_narrow(analyst):
    node("orders", description="Every order", tags=["finance"], columns=["amount"])
    node("refunds", description="Money returned for an order", tags=["finance"], owner="ana")
    node("events", description="Clicks", tags=["web"])
    assert names(analyst, "finance order") == ["orders", "refunds"]
    assert names(analyst, "tag:finance") == ["orders", "refunds"]
    assert names(analyst, "tag:finance owner:ana") == ["refunds"]
    assert names(analyst, "column:amount") == ["orders"]
    assert names(analyst, "tag:web order") == []


def test_search_across_kinds_in_an_indexed_project(project, analyst):
    kinds = {h.node.name: h.node.kind for h in index.search(analyst, "orders")}
    assert kinds == {"orders": "model", "shop.orders": "source", "stg_orders": "model"}
    assert names(analyst, "countr") == ["countries", "country_names"]  # a seed, and a model that reads it
    assert names(analyst, "receipt") == ["orders"]  # a column's description
    assert names(analyst, "finance-team") == ["orders"]
    assert index.search(analyst, "receipt")[0].reason == "column description"


def test_bad_input_is_refused_with_a_reason(analyst):
    with pytest.raises(InvalidInput, match="at most 200"):
        index.search(analyst, "x" * 201)
    with pytest.raises(InvalidInput, match="Unknown kind"):
        index.search(analyst, "orders", kind="table")


def test_an_outsider_may_not_search(outsider):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        index.search(outsider, "orders")


def test_search_takes_a_fixed_number_of_queries(analyst):
    for i in range(60):
        node(f"orders_{i:02d}", columns=["id", "amount"], tags=["t"])
    index.search(analyst, "warm")  # the user's roles are read once
    with CaptureQueriesContext(connection) as few:
        index.search(analyst, "orders", limit=10)
    with CaptureQueriesContext(connection) as many:
        index.search(analyst, "orders", limit=50)
    assert len(few) == len(many) <= 12


def test_the_old_search_catalog_keeps_answering_nodes(analyst):
    node("orders")
    node("stg_orders")
    assert [n.name for n in index.search_catalog(analyst, "orders")] == ["orders", "stg_orders"]
