"""A small project on main for the catalog tests: two sources, a seed, staging models, two marts.

    shop.orders ─ stg_orders ─┐
                              ├─ orders ─ revenue
    shop.customers ─ stg_customers ┘
    countries (seed) ─ country_names

Indexed as main is after a merge; the warehouse is never reached (runs, measurements and PII tags
are rows written by the tests).
"""

from __future__ import annotations

import pytest

from models_service import index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store

PROJECT = {
    "dbt_project.yml": "name: dmaas\nversion: '1.0'\nprofile: dmaas\nmodel-paths: [models]\nseed-paths: [seeds]\n",
    "models/sources.yml": """version: 2
sources:
  - name: shop
    schema: raw
    tables:
      - name: orders
        description: Orders as the shop writes them
        columns:
          - name: id
          - name: customer_id
          - name: amount
      - name: customers
        columns:
          - name: id
          - name: email
          - name: name
""",
    "seeds/countries.csv": "code,label\nnl,Netherlands\n",
    "models/staging/stg_orders.sql":
        "select id as order_id, customer_id, amount * 100 as amount_cents\nfrom {{ source('shop', 'orders') }}\n",
    "models/staging/stg_customers.sql":
        "select id as customer_id, email, name as customer_name\nfrom {{ source('shop', 'customers') }}\n",
    "models/marts/orders.sql": (
        "{{ config(materialized='table', tags=['finance']) }}\n"
        "select o.order_id, o.customer_id, c.email as customer_email, o.amount_cents / 100.0 as amount\n"
        "from {{ ref('stg_orders') }} o\njoin {{ ref('stg_customers') }} c on c.customer_id = o.customer_id\n"),
    "models/marts/revenue.sql":
        "select customer_id, sum(amount) as revenue\nfrom {{ ref('orders') }}\ngroup by customer_id\n",
    "models/marts/country_names.sql": "select code, label as country from {{ ref('countries') }}\n",
    "models/schema.yml": """version: 2
models:
  - name: orders
    description: Every order with its customer's e-mail address
    meta:
      owner: finance-team
    columns:
      - name: order_id
        description: The order
        data_tests: [unique, not_null]
      - name: customer_id
      - name: customer_email
        description: Where the receipt goes
      - name: amount
        description: The order's total in euros
  - name: stg_orders
    description: Raw orders, cleaned
    columns:
      - name: order_id
      - name: amount_cents
  - name: revenue
    description: Revenue per customer, from every order
    columns:
      - name: customer_id
      - name: revenue
""",
}


@pytest.fixture
def project(tmp_path, settings, db):
    """The project above on main, indexed."""
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in PROJECT.items()}, "catalog"),
                 author=PORTAL)
    index.rebuild(store)
    yield store
    repo_module.forget_stores()
