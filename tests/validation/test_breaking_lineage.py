"""The breaking-change warning reads the models below by column lineage (runner.lineage): a removed or
renamed column names the models that read it, with their columns made from it, and only those."""

from __future__ import annotations

import pytest

from models_service import changes
from models_service.project_files import ModelSpec
from tests.validation.conftest import check, commit_main, only

pytestmark = pytest.mark.django_db

READERS = {
    # reads amount for one of its columns (and customer_id to group)
    "models/order_totals.sql": "select o.customer_id, sum(o.amount) as total\nfrom {{ ref('stg_orders') }} o\ngroup by 1\n",
    # reads status only
    "models/order_statuses.sql": "select status, count(*) as orders\nfrom {{ ref('stg_orders') }}\ngroup by 1\n",
    # every column, through select *
    "models/orders_copy.sql": "select * from {{ ref('stg_orders') }}\n",
    # amount only in a filter: no column of its is made from it, the query still fails without it
    "models/big_orders.sql": "select id from {{ ref('stg_orders') }} where amount > 100\n",
}
WITHOUT_AMOUNT = "select id, customer_id, status\nfrom {{ source('raw', 'orders') }}"


@pytest.fixture
def readers(project) -> None:
    commit_main(READERS, "Models that read stg_orders in different ways")


def test_a_model_that_makes_a_column_from_the_removed_one_is_named_with_that_column(analyst, readers):
    [diag] = only(check(analyst, WITHOUT_AMOUNT, name="stg_orders"), "breaking_change")
    assert "removes amount" in diag["message"]
    assert "order_totals (for total)" in diag["message"]


def test_a_model_that_does_not_read_the_removed_column_is_not_named(analyst, readers):
    [diag] = only(check(analyst, WITHOUT_AMOUNT, name="stg_orders"), "breaking_change")
    assert "order_statuses" not in diag["message"]


def test_select_star_below_reads_every_column(analyst, readers):
    [diag] = only(check(analyst, WITHOUT_AMOUNT, name="stg_orders"), "breaking_change")
    assert "orders_copy (for amount)" in diag["message"]
    removes_status = "select id, customer_id, amount\nfrom {{ source('raw', 'orders') }}"
    [diag] = only(check(analyst, removes_status, name="stg_orders"), "breaking_change")
    assert "orders_copy" in diag["message"] and "order_statuses (for status)" in diag["message"]
    assert "order_totals" not in diag["message"] and "big_orders" not in diag["message"]


def test_a_column_read_only_in_a_filter_still_breaks_the_model(analyst, readers):
    [diag] = only(check(analyst, WITHOUT_AMOUNT, name="stg_orders"), "breaking_change")
    assert "big_orders (in a join, filter or grouping)" in diag["message"]


def test_a_model_below_already_updated_in_the_change_is_not_named(analyst, readers):
    change = changes.open_change(analyst, "Drop amount")
    for name in ("order_totals", "orders_copy", "big_orders"):
        changes.save_model(analyst, change, name, "select id from {{ ref('stg_orders') }}\n", ModelSpec(name))
    change = changes.get_change(analyst, change.pk)  # as the API fetches it: at its new head
    assert not only(check(analyst, WITHOUT_AMOUNT, name="stg_orders", change=change), "breaking_change")
    changes.save_model(analyst, change, "big_orders", READERS["models/big_orders.sql"], ModelSpec("big_orders"))
    change = changes.get_change(analyst, change.pk)
    [diag] = only(check(analyst, WITHOUT_AMOUNT, name="stg_orders", change=change), "breaking_change")
    assert "big_orders" in diag["message"] and "order_totals" not in diag["message"]
