"""Gated builds (deploys, production runs): a model whose error tests fail is rolled back, the old
version keeps serving, its children are skipped, and everything else is deployed."""

from __future__ import annotations

import time

import duckdb
import psycopg
import pytest

from tests.engine.helpers import build, statuses

YML = """version: 2
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - accepted_values:
              values: [open, shipped]
              config: {severity: warn}
  - name: totals
    columns:
      - name: n
        data_tests: [not_null]
"""

GOOD = {
    "seeds/raw_orders.csv": "id,status\n1,open\n2,shipped\n3,open\n",
    "models/orders.sql": "{{ config(materialized='table') }}select id, status from {{ ref('raw_orders') }}",
    "models/orders_view.sql": "select id from {{ ref('orders') }}",
    "models/totals.sql": "{{ config(materialized='table') }}select count(*) as n from {{ ref('orders') }}",
    "models/sibling.sql": "{{ config(materialized='table') }}select 1 as id, {{ var('v', 1) }} as version",
    "models/schema.yml": YML,
}
# A new version of orders with a duplicate id (an error test fails) and a new sibling.
BAD = dict(
    GOOD,
    **{
        "models/orders.sql": "{{ config(materialized='table') }}select id, status from {{ ref('raw_orders') }}"
        " union all select 1, 'open'",
        "models/sibling.sql": "{{ config(materialized='table') }}select 1 as id, 2 as version",
    },
)


def _rows(url: str, sql: str):
    if url.startswith("duckdb"):
        con = duckdb.connect(url[len("duckdb:///") :])
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _check_gate(url: str) -> None:
    _, first = build(GOOD, url, gate=True)
    assert first.ok, [(r.name, r.message) for r in first.results]

    _, summary = build(BAD, url, gate=True)
    got = statuses(summary)
    assert got["orders"] == "error"
    orders = next(r for r in summary.results if r.name == "orders")
    assert "not deployed" in orders.message and "unique_orders_id" in orders.message
    # the failing test is reported as failing, not skipped; its children are skipped
    assert got["unique_orders_id"] == "fail"
    assert got["not_null_orders_id"] == "pass"
    assert got["totals"] == "skipped" and got["orders_view"] == "skipped"
    assert got["sibling"] == "success"
    # the old orders still serves, whole; the sibling's new version is live
    assert _rows(url, "select count(*) from analytics.orders") == [(3,)]
    assert _rows(url, "select n from analytics.totals") == [(3,)]
    assert _rows(url, "select version from analytics.sibling") == [(2,)]


def test_a_failing_error_test_rolls_its_model_back_on_duckdb(tmp_path):
    _check_gate(f"duckdb:///{tmp_path}/wh.duckdb")


@pytest.mark.postgres
def test_a_failing_error_test_rolls_its_model_back_on_postgres(postgres_url):
    db = f"dmaas_gate_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'create database "{db}"')
    try:
        _check_gate(postgres_url.rsplit("/", 1)[0] + "/" + db)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{db}" with (force)')


def test_a_warning_test_does_not_hold_a_model_back(tmp_path):
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    build(GOOD, url, gate=True)
    warned = dict(
        GOOD,
        **{
            "models/orders.sql": "{{ config(materialized='table') }}select id, "
            "case when id = 3 then 'lost' else status end as status from {{ ref('raw_orders') }}"
        },
    )
    _, summary = build(warned, url, gate=True)
    got = statuses(summary)
    assert got["orders"] == "success" and got["accepted_values_orders_status__open__shipped"] == "warn"
    assert _rows(url, "select status from analytics.orders where id = 3") == [("lost",)]


def test_without_the_gate_build_keeps_dbt_semantics(tmp_path):
    """dbt build: the failing model is in place, then its test fails and its children skip."""
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    build(GOOD, url)
    _, summary = build(BAD, url)
    got = statuses(summary)
    assert got["orders"] == "success" and got["unique_orders_id"] == "fail" and got["totals"] == "skipped"
    assert _rows(url, "select count(*) from analytics.orders") == [(4,)]
