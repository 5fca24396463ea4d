"""A model on main with its production table seeded in the warehouse (DuckDB and PostgreSQL).

`orders` lives in `analytics.orders` with numbers, decimals, dates, text, booleans, nulls and a column
whose name needs quoting; `ghost` is on main but was never built; `inlined` is ephemeral.
"""

from __future__ import annotations

import pytest

from models_service import index
from models_service.repo import get_store
from tests.runner.conftest import (  # noqa: F401 - fixtures
    Warehouse,
    api_for,
    commit_to_main,
    duck,
    postgres_warehouse,
    repo,
    warehouse,
)

MAIN = {
    "models/orders.sql": "{{ config(materialized='table') }}\nselect 1 as order_id\n",
    "models/renamed.sql": "{{ config(materialized='table', alias='orders') }}\nselect 1 as order_id\n",
    "models/ghost.sql": "select 1 as id\n",
    "models/inlined.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as id\n",
}

ROWS = [
    # order_id, customer_id, amount, ordered_on, status, email, paid, "Status Note"
    (1, 10, "12.50", "2024-01-02", "shipped", "ada@example.com", True, "fast"),
    (2, 11, "7.25", "2024-01-03", "placed", "bob@example.com", False, "it's late"),
    (3, None, "3.00", "2024-01-04", "placed", None, False, None),
    (4, 10, "40.00", "2024-01-04", "shipped", "ada@example.com", True, "100%_sure"),
    (5, 12, "0.75", "2024-02-10", "cancelled", "cy@example.com", False, "x"),
    (6, 11, "19.99", "2024-03-01", "Shipped", "bob@example.com", True, None),
]


def _sql(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def seed_orders(w: Warehouse) -> None:
    values = ", ".join("(" + ", ".join(_sql(v) for v in row) + ")" for row in ROWS)
    w.run(
        "create schema if not exists analytics",
        "create table analytics.orders (order_id integer, customer_id integer, amount numeric(10,2), "
        'ordered_on date, status varchar, email varchar, paid boolean, "Status Note" varchar)',
        f"insert into analytics.orders values {values}",
    )


@pytest.fixture
def project(db):
    commit_to_main(MAIN)
    index.rebuild(get_store())


@pytest.fixture
def orders(project, warehouse):  # noqa: F811 - the fixture imported above
    seed_orders(warehouse)
    return warehouse


@pytest.fixture
def orders_duck(project, duck):  # noqa: F811 - the fixture imported above
    seed_orders(duck)
    return duck
