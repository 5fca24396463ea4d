"""Column profiles and chart data over the seeded relation, on DuckDB and PostgreSQL: the histogram's
bins hold every value once, top values are counted, dates are bucketed, and a chart's aggregates are
the numbers the rows add up to (12 groups at most, the rest as Other)."""

from __future__ import annotations

import pytest

from runner import explore
from tests.explore.conftest import ROWS

pytestmark = pytest.mark.django_db


def test_a_number_column_is_a_histogram_of_twenty_equal_bins(orders, viewer):
    p = explore.profile(viewer, "orders", "amount")
    assert (p["kind"], p["rows"], p["nulls"]) == ("number", 6, 0)
    assert (p["min"], p["max"]) == (0.75, 40.0)
    bins = p["histogram"]
    assert len(bins) == 20 and sum(b["count"] for b in bins) == 6
    assert bins[0]["from"] == 0.75 and bins[-1]["to"] == 40.0
    width = (40.0 - 0.75) / 20
    assert all(abs((b["to"] - b["from"]) - width) < 1e-9 for b in bins)
    assert [b["count"] for b in bins[:2]] == [1, 1] and bins[-1]["count"] == 1  # 0.75 | 3.00 | 40.00


def test_whole_numbers_with_few_values_get_a_bin_each(orders, viewer):
    p = explore.profile(viewer, "orders", "customer_id")
    assert p["nulls"] == 1
    assert [(b["from"], b["count"]) for b in p["histogram"]] == [(10, 2), (11, 2), (12, 1)]


def test_a_text_column_is_its_most_frequent_values(orders, viewer):
    p = explore.profile(viewer, "orders", "status")
    assert p["histogram"] is None and p["distinct"] == 4
    assert p["top"][:2] == [{"value": "placed", "count": 2}, {"value": "shipped", "count": 2}]
    assert sorted(t["value"] for t in p["top"][2:]) == ["Shipped", "cancelled"]
    notes = explore.profile(viewer, "orders", "Status Note")
    assert notes["nulls"] == 2 and sum(t["count"] for t in notes["top"]) == 4
    paid = explore.profile(viewer, "orders", "paid")
    assert paid["top"] == [{"value": False, "count": 3}, {"value": True, "count": 3}]


def test_a_date_column_is_counted_per_day_or_month(orders, viewer):
    p = explore.profile(viewer, "orders", "ordered_on")
    assert p["unit"] == "day" and (p["min"], p["max"]) == ("2024-01-02", "2024-03-01")
    assert [(b["from"], b["count"]) for b in p["histogram"]][:3] == [("2024-01-02", 1), ("2024-01-03", 1),
                                                                    ("2024-01-04", 2)]
    assert sum(b["count"] for b in p["histogram"]) == 6


def test_a_profile_respects_the_filters(orders, viewer):
    p = explore.profile(viewer, "orders", "status", filters=[{"column": "paid", "op": "=", "value": True}])
    assert p["rows"] == 3 and {t["value"] for t in p["top"]} == {"shipped", "Shipped"}


def test_a_profile_of_an_unknown_column_is_refused(orders, viewer):
    with pytest.raises(explore.ExploreError, match="has no column 'amount; select 1'"):
        explore.profile(viewer, "orders", "amount; select 1")


def _by_status(rows, value):
    out = {}
    for row in rows:
        out.setdefault(row[4], []).append(value(row))
    return out


def test_chart_aggregates_are_what_the_rows_add_up_to(orders, viewer):
    count = explore.chart_data(viewer, "orders", {"kind": "bar", "x": "status", "aggregate": "count"})
    assert count["labels"] == ["Shipped", "cancelled", "placed", "shipped"] or \
        sorted(count["labels"]) == sorted(["Shipped", "cancelled", "placed", "shipped"])
    got = dict(zip(count["labels"], count["series"][0]["values"], strict=True))
    assert got == {"Shipped": 1, "cancelled": 1, "placed": 2, "shipped": 2}
    amounts = _by_status(ROWS, lambda r: float(r[2]))
    for aggregate, fold in (("sum", sum), ("avg", lambda v: sum(v) / len(v)), ("min", min), ("max", max)):
        data = explore.chart_data(viewer, "orders", {"kind": "bar", "x": "status", "y": "amount",
                                                     "aggregate": aggregate})
        got = dict(zip(data["labels"], data["series"][0]["values"], strict=True))
        assert got == pytest.approx({k: fold(v) for k, v in amounts.items()}), aggregate
        assert data["series"][0]["name"] == f"{aggregate} of amount"


def test_a_grouped_chart_has_a_series_per_group_aligned_to_x(orders, viewer):
    data = explore.chart_data(viewer, "orders", {"kind": "line", "x": "ordered_on", "y": "amount",
                                                 "aggregate": "sum", "group_by": "paid"})
    assert data["labels"] == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-02-10", "2024-03-01"]
    series = {s["name"]: s["values"] for s in data["series"]}
    assert series == {"false": [None, 7.25, 3.0, 0.75, None], "true": [12.5, None, 40.0, None, 19.99]} or \
        series == {"False": [None, 7.25, 3.0, 0.75, None], "True": [12.5, None, 40.0, None, 19.99]}
    assert not data["truncated"] and not data["groups_truncated"]


def test_groups_beyond_twelve_are_summed_up_as_other(project, warehouse, viewer):
    values = ", ".join(f"({i}, 'g{i:02d}', {i})" for i in range(1, 16)) + ", (16, 'g15', 100)"
    warehouse.run("create schema if not exists analytics",
                  "create table analytics.orders (order_id integer, status varchar, amount integer)",
                  f"insert into analytics.orders values {values}")
    data = explore.chart_data(viewer, "orders", {"kind": "bar", "x": "amount", "aggregate": "count",
                                                 "group_by": "status"})
    assert len(data["series"]) == explore.MAX_GROUPS + 1 and data["groups_truncated"]
    assert data["series"][0]["name"] == "g15"  # the biggest group first
    other = data["series"][-1]
    assert other["other"] and other["name"] == "Other" and sum(v or 0 for v in other["values"]) == 3
    total = sum(v or 0 for s in data["series"] for v in s["values"])
    assert total == 16


def test_a_scatter_chart_is_the_rows_themselves(orders, viewer):
    data = explore.chart_data(viewer, "orders", {"kind": "scatter", "x": "order_id", "y": "amount"})
    assert data["aggregate"] == "none"
    assert sorted(tuple(p) for p in data["series"][0]["points"]) == [
        (1.0, 12.5), (2.0, 7.25), (3.0, 3.0), (4.0, 40.0), (5.0, 0.75), (6.0, 19.99)]


def test_a_chart_respects_the_filters(orders, viewer):
    data = explore.chart_data(viewer, "orders", {"x": "status", "aggregate": "count",
                                                 "filters": [{"column": "amount", "op": ">", "value": 10}]})
    assert dict(zip(data["labels"], data["series"][0]["values"], strict=True)) == {"Shipped": 1, "shipped": 2}


@pytest.mark.parametrize(("spec", "field"), [
    ({"kind": "pie", "x": "status"}, "kind"),
    ({"x": "status", "aggregate": "median", "y": "amount"}, "aggregate"),
    ({"x": "", "aggregate": "count"}, "x"),
    ({"x": "status", "aggregate": "sum"}, "y"),
    ({"x": "status", "aggregate": "sum", "y": "email"}, "y"),
    ({"x": "status) from x; --", "aggregate": "count"}, "x"),
    ({"x": "status", "aggregate": "count", "group_by": "nope"}, "group_by"),
    ({"kind": "scatter", "x": "status", "y": "amount"}, "x"),
    ({"kind": "bar", "x": "status", "y": "amount", "aggregate": "none", "group_by": "paid"}, "group_by"),
    ({"x": "status", "aggregate": "count", "filters": [{"column": "x", "op": "=", "value": 1}]}, "filters[0].column"),
    ({"x": "status", "aggregate": "count", "bucket": "month"}, "bucket"),  # text: nothing to bucket
    ({"x": "amount", "aggregate": "count", "bucket": "year"}, "bucket"),
    ({"x": "ordered_on", "aggregate": "count", "bucket": "fortnight"}, "bucket"),
    ({"x": "ordered_on", "aggregate": "count", "bucket": ["month"]}, "bucket"),
    ({"kind": "scatter", "x": "order_id", "y": "amount", "bucket": "month"}, "bucket"),
    ({"kind": "line", "x": "ordered_on", "y": "amount", "aggregate": "none", "bucket": "month"}, "bucket"),
])
def test_a_chart_that_cannot_be_drawn_is_refused_with_its_field(orders, viewer, spec, field):
    with pytest.raises(explore.ExploreError) as caught:
        explore.chart_data(viewer, "orders", spec)
    assert caught.value.field == field


def test_timestamps_over_months_are_counted_per_month(project, warehouse, viewer):
    warehouse.run("create schema if not exists analytics",
                  "create table analytics.orders (order_id integer, placed_at timestamp)",
                  "insert into analytics.orders values (1, '2024-01-05 10:00'), (2, '2024-01-20 23:59'), "
                  "(3, '2024-04-01 00:00'), (4, '2024-06-30 12:00'), (5, null)")
    p = explore.profile(viewer, "orders", "placed_at")
    assert p["kind"] == "timestamp" and p["unit"] == "month" and p["nulls"] == 1
    assert [(b["from"], b["count"]) for b in p["histogram"]] == [("2024-01-01", 2), ("2024-04-01", 1),
                                                                ("2024-06-01", 1)]
    rows = explore.rows(viewer, "orders", filters=[{"column": "placed_at", "op": ">=", "value": "2024-01-20T12:00"}])
    assert sorted(r[0] for r in rows["rows"]) == [2, 3, 4]


# --------------------------------------------------------------------------- a date axis per day, week, month, year


@pytest.fixture
def placed(project, warehouse):
    """Orders placed over half a year (timestamps), one with no time: `placed_at` per month is 2, 1, 2."""
    warehouse.run("create schema if not exists analytics",
                  "create table analytics.orders (order_id integer, placed_at timestamp, status varchar, "
                  "amount integer)",
                  "insert into analytics.orders values (1, '2024-01-05 10:00', 'paid', 10), "
                  "(2, '2024-01-20 23:59', 'open', 20), (3, '2024-04-01 00:00', 'paid', 30), "
                  "(4, '2024-06-30 12:00', 'paid', 40), (5, '2024-06-01 08:00', 'open', 50), (6, null, 'paid', 60)")
    return warehouse


def test_timestamps_per_month_are_one_label_per_month_in_order(placed, viewer):
    plain = explore.chart_data(viewer, "orders", {"kind": "line", "x": "placed_at", "aggregate": "count"})
    assert len(plain["labels"]) == 6 and plain["bucket"] is None  # today's behaviour: one point per timestamp
    data = explore.chart_data(viewer, "orders", {"kind": "line", "x": "placed_at", "aggregate": "count",
                                                 "bucket": "month"})
    assert data["bucket"] == "month"
    assert data["labels"] == ["2024-01-01", "2024-04-01", "2024-06-01", None]  # the empty one last, as before
    assert data["series"][0]["values"] == [2, 1, 2, 1]


@pytest.mark.parametrize(("bucket", "labels"), [
    ("day", ["2024-01-05", "2024-01-20", "2024-04-01", "2024-06-01", "2024-06-30"]),
    ("week", ["2024-01-01", "2024-01-15", "2024-04-01", "2024-05-27", "2024-06-24"]),  # from Monday, on both
    ("year", ["2024-01-01"]),
])
def test_every_bucket_labels_its_first_day(placed, viewer, bucket, labels):
    data = explore.chart_data(viewer, "orders", {"x": "placed_at", "aggregate": "count", "bucket": bucket,
                                                 "filters": [{"column": "placed_at", "op": "not_null"}]})
    assert data["labels"] == labels
    assert sum(data["series"][0]["values"]) == 5


def test_a_bucketed_chart_keeps_its_filters_groups_and_aggregate(placed, viewer):
    data = explore.chart_data(viewer, "orders", {"kind": "bar", "x": "placed_at", "bucket": "month", "y": "amount",
                                                 "aggregate": "sum", "group_by": "status",
                                                 "filters": [{"column": "amount", "op": ">", "value": 10}]})
    assert data["labels"] == ["2024-01-01", "2024-04-01", "2024-06-01", None]
    series = {s["name"]: s["values"] for s in data["series"]}
    assert series == {"paid": [None, 30.0, 40.0, 60.0], "open": [20.0, None, 50.0, None]}


def test_a_date_column_per_month(orders, viewer):
    data = explore.chart_data(viewer, "orders", {"x": "ordered_on", "aggregate": "count", "bucket": "month"})
    assert data["labels"] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert data["series"][0]["values"] == [4, 1, 1]


def test_buckets_beyond_the_limit_are_cut_and_flagged(placed, viewer, monkeypatch):
    monkeypatch.setattr("runner.explore.charts.MAX_POINTS", 2)
    data = explore.chart_data(viewer, "orders", {"x": "placed_at", "aggregate": "count", "bucket": "month"})
    assert data["labels"] == ["2024-01-01", "2024-04-01"] and data["truncated"]
