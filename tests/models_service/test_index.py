"""The repository index: rebuilt from git by `dmaas_reindex`, kept up to date by writes, searched by the catalog."""

import pytest
from django.core.management import call_command

from models_service import changes, index, merging
from models_service.models import IndexedNode, IndexedRef
from models_service.project_files import ColumnSpec, ModelSpec

from .conftest import approve, spec

pytestmark = pytest.mark.django_db


def merge(author, reviewer, title, saves):
    change = changes.open_change(author, title)
    for name, sql, props in saves:
        changes.save_model(author, change, name, sql, props)
    changes.submit_change(author, change)
    approve(change)
    return merging.merge_change(reviewer, change)


def catalog(analyst, reviewer):
    merge(analyst, reviewer, "catalog", [
        ("orders", "{{ config(materialized='table', tags=['finance']) }}\nselect * from {{ ref('stg_orders') }}\n",
         ModelSpec("orders", "Every order", columns=[ColumnSpec("order_id"), ColumnSpec("customer_email")],
                   extra={"meta": {"owner": "finance-team"}})),
        ("stg_orders", "select 1 as order_id\n", ModelSpec("stg_orders", "Raw orders", config={"tags": ["staging"]})),
        ("customers", "select 'x' as customer_email\n", spec("customers", "People who buy", ("customer_email",))),
    ])


def test_search_by_name_column_tag_and_owner(analyst, reviewer):
    catalog(analyst, reviewer)
    assert [n.name for n in index.search_catalog(analyst, "orders")] == ["orders", "stg_orders"]
    assert [n.name for n in index.search_catalog(analyst, "customer_email")] == ["customers", "orders"]
    assert [n.name for n in index.search_catalog(analyst, "finance")] == ["orders"]
    assert [n.name for n in index.find_by_tag(analyst, "staging")] == ["stg_orders"]
    assert [c.node.name for c in index.find_by_column(analyst, "CUSTOMER_EMAIL")] == ["customers", "orders"]
    assert [n.name for n in index.find_by_owner(analyst, "finance-team")] == ["orders"]
    assert index.dependents_of(analyst, "stg_orders") == ["orders"]
    orders = IndexedNode.objects.get(ref="main", name="orders")
    assert orders.materialized == "table" and orders.path == "models/orders.sql" and len(orders.sql_blob) == 40


def test_reindex_rebuilds_the_same_rows_from_git(analyst, reviewer, capsys):
    catalog(analyst, reviewer)
    change = changes.open_change(analyst, "open one")
    changes.save_model(analyst, change, "orders", "select 2\n", spec("orders", "Changed"))
    changes.delete_model(analyst, change, "customers")

    def snapshot():
        return sorted(
            (n.ref, n.kind, n.name, n.description, n.sql_blob, n.deleted, tuple(c.name for c in n.columns.all()),
             tuple(sorted(t.tag for t in n.tags.all())))
            for n in IndexedNode.objects.all())

    incremental = snapshot()
    IndexedNode.objects.all().delete()
    IndexedRef.objects.all().delete()
    call_command("dmaas_reindex")
    assert capsys.readouterr().out.strip() == "Indexed main: 3 models; 1 open change(s)."
    assert snapshot() == incremental


def test_a_change_overlays_main(analyst, reviewer):
    catalog(analyst, reviewer)
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "revenue", "select 1\n", spec("revenue"))
    changes.delete_model(analyst, change, "customers")
    names = [n.name for n in index.models_in(analyst, change)]
    assert names == ["orders", "revenue", "stg_orders"]
    assert [n.name for n in index.models_in(analyst)] == ["customers", "orders", "stg_orders"]
