"""Statistics a build measures (runner/observe/stats.py), on a fixture table, on DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest

from runner import warehouse as wh
from runner.observe import stats

FIXTURE = [
    "create schema if not exists analytics",
    "create table analytics.orders (order_id integer, amount numeric(10,2), ordered_on date, status varchar, "
    "paid boolean, note text)",
    "insert into analytics.orders values "
    "(1, 10.00, '2024-01-01', 'shipped', true, 'a'), (2, 20.00, '2024-01-02', 'shipped', true, 'b'), "
    "(3, 30.00, '2024-01-03', 'placed', false, null), (4, null, '2024-01-05', 'placed', null, null), "
    "(5, 40.00, null, 'returned', true, null), (6, 50.00, '2024-01-04', 'shipped', false, 'c')",
]


def measure(warehouse, name="orders"):
    with wh.get_warehouse(warehouse.url).build() as adapter:
        return stats.measure(adapter, "analytics", name)


def by_name(result):
    return {c["name"]: c for c in result.columns}


@pytest.mark.django_db
def test_one_relation_gives_rows_nulls_distincts_ranges_and_moments(warehouse):
    warehouse.run(*FIXTURE)
    result = measure(warehouse)
    cols = by_name(result)
    assert result.rows == 6 and list(cols) == ["order_id", "amount", "ordered_on", "status", "paid", "note"]
    assert cols["order_id"]["nulls"] == 0 and cols["order_id"]["distinct"] == 6
    assert (cols["order_id"]["min"], cols["order_id"]["max"], cols["order_id"]["mean"]) == (1, 6, 3.5)
    amount = cols["amount"]
    assert amount["nulls"] == 1 and amount["null_fraction"] == pytest.approx(1 / 6, abs=1e-6)
    assert (amount["min"], amount["max"], amount["mean"]) == (10.0, 50.0, 30.0)
    assert amount["stddev"] == pytest.approx(15.8114, abs=1e-3)
    assert (cols["ordered_on"]["min"], cols["ordered_on"]["max"]) == ("2024-01-01", "2024-01-05")
    assert "mean" not in cols["ordered_on"] and "min" not in cols["status"]
    assert cols["status"]["top"] == [["shipped", 3], ["placed", 2], ["returned", 1]]
    assert cols["paid"]["top"] == [[True, 3], [False, 2]] and cols["paid"]["nulls"] == 1
    assert cols["note"]["null_fraction"] == 0.5 and cols["note"]["top"] == [["a", 1], ["b", 1], ["c", 1]]


@pytest.mark.django_db
def test_bytes_where_the_warehouse_reports_them(warehouse):
    warehouse.run(*FIXTURE)
    result = measure(warehouse)
    if warehouse.kind == "postgres":
        assert result.bytes and result.bytes > 0
    else:
        assert result.bytes is None  # DuckDB reports no size per table


@pytest.mark.django_db
def test_an_empty_table_and_a_view_are_measured_too(warehouse):
    warehouse.run(*FIXTURE, "create table analytics.nothing (id integer, name varchar)",
                  "create view analytics.shipped as select * from analytics.orders where status = 'shipped'")
    empty = by_name(measure(warehouse, "nothing"))
    assert empty["id"]["nulls"] == 0 and empty["id"]["null_fraction"] == 0.0 and "top" not in empty["name"]
    view = measure(warehouse, "shipped")
    assert view.rows == 3 and by_name(view)["status"]["top"] == [["shipped", 3]]


@pytest.mark.django_db
def test_high_cardinality_text_gets_no_top_values_and_wide_tables_are_capped(duck):
    cols = ", ".join(f"c{i} integer" for i in range(120))
    duck.run("create schema analytics", f"create table analytics.wide ({cols})",
             "create table analytics.names as select 'n' || i::varchar as name from range(100) t(i)")
    with wh.get_warehouse(duck.url).build() as adapter:
        wide = stats.measure(adapter, "analytics", "wide")
        names = stats.measure(adapter, "analytics", "names")
    assert len(wide.columns) == stats.MAX_COLUMNS and wide.truncated
    assert names.columns[0]["distinct"] > stats.TOP_MAX_DISTINCT and "top" not in names.columns[0]


def test_types_of_both_dialects_are_read():
    assert [stats.kind_of(t) for t in ("INTEGER", "DECIMAL(10,2)", "double precision", "BIGINT", "numeric")] == \
        ["number"] * 5
    assert [stats.kind_of(t) for t in ("DATE", "timestamp with time zone", "TIMESTAMP")] == ["date"] * 3
    assert [stats.kind_of(t) for t in ("VARCHAR", "character varying", "text")] == ["text"] * 3
    assert [stats.kind_of(t) for t in ("BOOLEAN", "INTEGER[]", "interval", "jsonb", "BLOB")] == \
        ["boolean", "other", "other", "other", "other"]


@pytest.mark.django_db
def test_a_big_relation_is_measured_on_a_sample_with_its_exact_row_count(warehouse):
    rows = 4 * stats.SAMPLE_ROWS
    warehouse.run("create schema if not exists analytics",
                  "create table analytics.big as select i as id, case when i % 4 = 0 then null else i end as v, "
                  f"case when i % 2 = 0 then 'a' else 'b' end as kind from generate_series(1, {rows}) as t(i)",
                  "create view analytics.big_view as select * from analytics.big")
    with wh.get_warehouse(warehouse.url).build() as adapter:
        table = stats.measure(adapter, "analytics", "big", rows=rows)
        view = stats.measure(adapter, "analytics", "big_view")
    for result in (table, view):
        cols = by_name(result)
        assert result.rows == rows and 0 < cols["id"]["sample"] < rows
        assert cols["v"]["null_fraction"] == pytest.approx(0.25, abs=0.03)
        assert cols["v"]["nulls"] == pytest.approx(rows / 4, rel=0.15)
        assert [v for v, _ in cols["kind"]["top"]] in (["a", "b"], ["b", "a"])
        assert sum(n for _, n in cols["kind"]["top"]) == pytest.approx(rows, rel=0.02)
