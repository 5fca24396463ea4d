"""Fixtures of the validation tests: a fresh bare data-models repository per test, a small project on main
(sources with documented columns, models whose SQL names their columns, one whose columns are unknown),
and `check` to validate text the way the API does."""

from __future__ import annotations

from pathlib import Path

import pytest

from models_service import index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store
from runner.validation import clear_caches, validate_model

SOURCES_YML = """version: 2
sources:
  - name: raw
    schema: raw
    tables:
      - name: orders
        columns:
          - name: id
            data_type: integer
          - name: customer_id
          - name: amount
            data_type: decimal(10,2)
          - name: status
      - name: customers
        columns:
          - name: id
          - name: name
      - name: events
"""

PROJECT = {
    "models/sources.yml": SOURCES_YML,
    "macros/money.sql": "{% macro cents_to_dollars(column) %}({{ column }} / 100.0){% endmacro %}\n",
    "models/stg_orders.sql": "select id, customer_id, amount, status\nfrom {{ source('raw', 'orders') }}\n",
    "models/stg_customers.sql": "select id, name from {{ source('raw', 'customers') }}\n",
    "models/order_totals.sql": (
        "select o.customer_id, sum(o.amount) as total\nfrom {{ ref('stg_orders') }} o\ngroup by 1\n"
    ),
    "models/customer_report.sql": (
        "select c.name, t.total\nfrom {{ ref('stg_customers') }} c\n"
        "join {{ ref('order_totals') }} t on t.customer_id = c.id\n"
    ),
    "models/events_all.sql": "select * from {{ source('raw', 'events') }}\n",
    "models/legacy.sql": "select * from some_schema.some_table\n",
    "models/legacy.yml": "version: 2\nmodels:\n  - name: legacy\n    columns:\n      - name: legacy_id\n      - name: label\n",
}


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    """This test's bare data-models repository (created on first use, as on a fresh install)."""
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    clear_caches()
    yield path
    repo_module.forget_stores()
    clear_caches()


def commit_main(files: dict[str, str], message: str = "Add files") -> None:
    """Commit files straight to main (as an engineer's push would) and index main again."""
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in files.items()}, message), author=PORTAL)
    index.rebuild(store)


@pytest.fixture
def project(db) -> dict[str, str]:
    commit_main(PROJECT, "The test project")
    return PROJECT


def check(user, sql: str, name: str = "new_model", change=None) -> dict:
    return validate_model(user, sql=sql, name=name, change=change)


def only(result: dict, code: str) -> list[dict]:
    return [d for d in result["diagnostics"] if d["code"] == code]


def apply_fix(text: str, fix: dict) -> str:
    """The text after a fix is applied, as the editor applies it (1-based, end exclusive)."""
    lines = text.split("\n")

    def offset(line: int, column: int) -> int:
        return sum(len(x) + 1 for x in lines[:line - 1]) + column - 1

    r = fix["replace"]
    return text[:offset(r["line"], r["column"])] + fix["text"] + text[offset(r["end_line"], r["end_column"]):]
