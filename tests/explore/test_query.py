"""The query builder over a seeded production relation, on DuckDB and PostgreSQL: filters, sorting and
paging are right, and anything that is not a real column, a known operator or a value of the column's
kind is refused with a 400 that says why (so nothing a caller sends becomes SQL of its own)."""

from __future__ import annotations

import pytest

from models_service.errors import NotFound
from runner import explore

pytestmark = pytest.mark.django_db


def ids(user, *filters, **kw):
    result = explore.rows(user, "orders", filters=list(filters), **kw)
    return [row[0] for row in result["rows"]]


def f(column, op, value=None):
    return {"column": column, "op": op, **({} if value is None else {"value": value})}


def test_rows_come_with_their_columns_and_kinds(orders, viewer):
    result = explore.rows(viewer, "orders")
    assert result["relation"] == "analytics.orders"
    assert [c["name"] for c in result["columns"]] == ["order_id", "customer_id", "amount", "ordered_on", "status",
                                                     "email", "paid", "Status Note"]
    assert [c["kind"] for c in result["columns"]] == ["number", "number", "number", "date", "text", "text",
                                                     "boolean", "text"]
    assert result["total"] == 6 and result["row_count"] == 6 and not result["truncated"]


def test_filters_select_the_rows_they_say(orders, viewer):
    assert sorted(ids(viewer, f("status", "=", "placed"))) == [2, 3]
    assert sorted(ids(viewer, f("status", "!=", "placed"))) == [1, 4, 5, 6]
    assert sorted(ids(viewer, f("amount", ">", "10"))) == [1, 4, 6]
    assert sorted(ids(viewer, f("amount", "<=", 3))) == [3, 5]
    assert sorted(ids(viewer, f("ordered_on", ">=", "2024-01-04"))) == [3, 4, 5, 6]
    assert sorted(ids(viewer, f("ordered_on", "<", "2024-01-04"))) == [1, 2]
    assert sorted(ids(viewer, f("status", "contains", "SHIP"))) == [1, 4, 6]  # any case
    assert sorted(ids(viewer, f("status", "starts_with", "can"))) == [5]
    assert sorted(ids(viewer, f("status", "in", ["placed", "cancelled"]))) == [2, 3, 5]
    assert sorted(ids(viewer, f("customer_id", "in", "10, 12"))) == [1, 4, 5]
    assert ids(viewer, f("customer_id", "is_null")) == [3]
    assert sorted(ids(viewer, f("Status Note", "not_null"))) == [1, 2, 4, 5]
    assert sorted(ids(viewer, f("paid", "=", "true"))) == [1, 4, 6]
    assert ids(viewer, f("paid", "=", True), f("amount", ">", 15), f("status", "=", "shipped")) == [4]
    assert ids(viewer, f("order_id", "contains", "5")) == [5]  # a number column as text


def test_like_wildcards_in_a_value_are_plain_characters(orders, viewer):
    assert ids(viewer, f("Status Note", "contains", "%_")) == [4]
    assert ids(viewer, f("Status Note", "contains", "_")) == [4]
    assert ids(viewer, f("Status Note", "starts_with", "%")) == []
    assert ids(viewer, f("Status Note", "contains", "'s")) == [2]


def test_sorting_orders_by_a_real_column_with_empty_values_last(orders, viewer):
    assert ids(viewer, sort="amount") == [5, 3, 2, 1, 6, 4]
    assert ids(viewer, sort="amount", order="desc") == [4, 6, 1, 2, 3, 5]
    assert ids(viewer, sort="customer_id")[-1] == 3
    assert ids(viewer, sort="customer_id", order="desc")[-1] == 3
    assert ids(viewer, sort="Status Note", order="asc")[:2] == [4, 1]


def test_pages_follow_each_other_and_count_every_match(orders, viewer):
    first = explore.rows(viewer, "orders", sort="order_id", limit=4)
    assert [r[0] for r in first["rows"]] == [1, 2, 3, 4] and first["truncated"] and first["total"] == 6
    second = explore.rows(viewer, "orders", sort="order_id", limit=4, offset=4)
    assert [r[0] for r in second["rows"]] == [5, 6] and not second["truncated"] and second["total"] == 6
    filtered = explore.rows(viewer, "orders", filters=[f("status", "=", "placed")], limit=1, offset=1)
    assert filtered["total"] == 2 and filtered["row_count"] == 1


def test_values_that_look_like_sql_are_only_values(orders, viewer):
    assert ids(viewer, f("status", "=", "placed' or '1'='1")) == []
    assert ids(viewer, f("status", "=", "x'); drop table analytics.orders; --")) == []
    assert ids(viewer, f("status", "in", ["placed') or (1=1", "shipped"])) == [1, 4]
    assert ids(viewer, f("Status Note", "=", "it's late")) == [2]
    assert ids(viewer, f("status", "=", "\\' or 1=1 --")) == []
    assert explore.rows(viewer, "orders")["total"] == 6  # still there


@pytest.mark.parametrize(("spec", "field", "words"), [
    (f("nope", "=", 1), "filters[0].column", "has no column 'nope'"),
    (f('status" = status or "1', "=", 1), "filters[0].column", "has no column"),
    (f("status; drop table analytics.orders", "=", "x"), "filters[0].column", "has no column"),
    (f("status", "like", "x"), "filters[0].op", "Unknown operator 'like'"),
    (f("status", "= 1 or 1 =", "x"), "filters[0].op", "Unknown operator"),
    (f("amount", ">", "1 or 1=1"), "filters[0].value", "amount holds numbers"),
    (f("amount", ">", "NaN"), "filters[0].value", "amount holds numbers"),
    (f("amount", "=", None), "filters[0].value", "Give a value"),
    (f("ordered_on", ">", "yesterday"), "filters[0].value", "write 'yesterday' as 2024-01-31"),
    (f("paid", "=", "maybe"), "filters[0].value", "true or false"),
    (f("status", "in", []), "filters[0].value", "'in' takes a list"),
    (f("status", "=", {"sql": "1"}), "filters[0].value", "text or a number"),
    ("status = 'x'", "filters[0]", "A filter is"),
])
def test_the_builder_refuses_what_it_does_not_know(orders, viewer, spec, field, words):
    with pytest.raises(explore.ExploreError) as caught:
        explore.rows(viewer, "orders", filters=[spec])
    assert caught.value.field == field and words in caught.value.message


@pytest.mark.parametrize(("kw", "field"), [
    ({"sort": "amount desc, (select 1)"}, "sort"),
    ({"sort": "amount", "order": "sideways"}, "order"),
    ({"limit": 100_000}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_sort_order_and_limits_are_checked(orders, viewer, kw, field):
    with pytest.raises(explore.ExploreError) as caught:
        explore.rows(viewer, "orders", **kw)
    assert caught.value.field == field


def test_a_model_is_read_where_production_builds_it(orders, viewer):
    # `renamed` is built under the alias `orders`
    assert explore.rows(viewer, "renamed")["relation"] == "analytics.orders"


def test_models_not_built_unknown_or_ephemeral_are_refused_clearly(orders, viewer):
    with pytest.raises(explore.NotBuilt, match="has not been built in production yet"):
        explore.rows(viewer, "ghost")
    with pytest.raises(NotFound):
        explore.rows(viewer, "no_such_model")
    with pytest.raises(explore.ExploreError, match="ephemeral"):
        explore.rows(viewer, "inlined")
