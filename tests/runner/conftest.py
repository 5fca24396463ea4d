"""Fixtures of the runner tests: a fresh bare data-models repository and a fresh warehouse per test.

`warehouse` is parametrized: a DuckDB file under tmp_path (the embedded default) and a database of
its own on the real PostgreSQL server (tests/services.py: skipped on a laptop without it, a failure
under CI=true).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rest_framework.test import APIClient

from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store
from runner import warehouse as wh


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    """This test's bare data-models repository (created on first use, as on a fresh install)."""
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield path
    repo_module.forget_stores()


def commit_to_main(files: dict[str, str], message: str = "Models on main") -> str:
    """Write files straight onto main, as an engineer's merged work would be."""
    store = get_store()
    result = store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in files.items()}, message),
                          author=PORTAL)
    return result.sha


@dataclass
class Warehouse:
    kind: str  # duckdb | postgres
    url: str

    def run(self, *statements: str) -> None:
        """Statements through a build lease (seeding production and dev tables directly)."""
        with wh.get_warehouse(self.url).build() as adapter:
            for sql in statements:
                adapter.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with wh.get_warehouse(self.url).build() as adapter:
            return adapter.fetchall(sql)


def duckdb_warehouse(tmp_path: Path, settings) -> Warehouse:
    url = f"duckdb:///{tmp_path / 'warehouse' / 'warehouse.duckdb'}"
    settings.DMAAS_WAREHOUSE = url
    return Warehouse("duckdb", url)


@pytest.fixture
def postgres_warehouse(request, settings) -> Warehouse:
    base = request.getfixturevalue("postgres_url")
    name = f"dmaas_wh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    settings.DMAAS_WAREHOUSE = url
    try:
        yield Warehouse("postgres", url)
    finally:
        wh.forget_warehouses()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path, settings) -> Warehouse:
    wh.forget_warehouses()
    if request.param == "duckdb":
        yield duckdb_warehouse(tmp_path, settings)
    else:
        yield request.getfixturevalue("postgres_warehouse")
    wh.forget_warehouses()


@pytest.fixture
def duck(tmp_path, settings) -> Warehouse:
    wh.forget_warehouses()
    yield duckdb_warehouse(tmp_path, settings)
    wh.forget_warehouses()


@pytest.fixture
def api_for() -> Callable[[Any], APIClient]:
    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


def seed_production(w: Warehouse) -> None:
    """analytics.stg_orders and analytics.stg_customers as production has them, and a dev copy."""
    w.run(
        "create schema if not exists analytics",
        "create table analytics.stg_orders (order_id integer, customer_id integer, amount numeric(10,2), "
        "ordered_on date, status varchar, src varchar)",
        "insert into analytics.stg_orders values (1, 10, 12.50, '2024-01-02', 'shipped', 'prod'), "
        "(2, 11, 7.25, '2024-01-03', 'placed', 'prod'), (3, null, 3.00, '2024-01-04', 'placed', 'prod')",
        "create table analytics.stg_customers (customer_id integer, name varchar, src varchar)",
        "insert into analytics.stg_customers values (10, 'Ada', 'prod'), (11, 'Bob', 'prod')",
    )


MAIN_FILES = {
    "models/staging/stg_orders.sql": "select 1 as order_id, 10 as customer_id\n",
    "models/staging/stg_customers.sql": "select 10 as customer_id, 'Ada' as name\n",
}
