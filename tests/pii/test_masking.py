"""Masking of confirmed PII in the editor's preview (through the API) and in `mask_result`, for an
analyst (masked) and for people with the PII permission (unmasked, and audited)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from models_service.audit import entries
from runner import warehouse as wh
from runner.models import PiiStatus, PiiTag
from runner.observe import pii
from tests.personas import make_user
from tests.runner.conftest import MAIN_FILES, commit_to_main, seed_production

pytestmark = pytest.mark.django_db


@pytest.fixture
def legal_analyst(db):
    """Legal, and an analyst too: the preview is an editor's tool (model.edit)."""
    return make_user("lea", "analyst", "legal")


def confirm(model: str, column: str, category: str = "name") -> PiiTag:
    return PiiTag.objects.create(model=model, column=column, category=category, confidence=0.9,
                                 status=PiiStatus.CONFIRMED, detected_at=timezone.now())


def preview(api_for, user, sql: str, name: str = "my_model"):
    response = api_for(user).post("/api/v1/preview", {"sql": sql, "name": name}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    return body, {c["name"]: i for i, c in enumerate(body["columns"])}


JOINED = ("select c.name as who, lower(c.name) as shout, o.order_id, c.src\n"
          "from {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c on c.customer_id = o.customer_id\n"
          "order by o.order_id")


def test_the_preview_masks_columns_traced_to_a_confirmed_column_for_an_analyst(warehouse, analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    confirm("stg_customers", "name")
    body, at = preview(api_for, analyst, JOINED)
    assert [row[at["who"]] for row in body["rows"]] == [pii.MASK, pii.MASK]
    assert [row[at["shout"]] for row in body["rows"]] == [pii.MASK, pii.MASK]
    assert [row[at["order_id"]] for row in body["rows"]] == [1, 2]
    assert body["rows"][0][at["src"]] == "prod"
    assert body["columns"][at["who"]]["masked"] is True and "masked" not in body["columns"][at["src"]]
    assert "Ada" not in repr(body["rows"]) and not entries(action="pii.view").exists()


def test_a_star_and_an_ambiguous_column_are_masked_by_name(warehouse, analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    confirm("stg_customers", "name")
    body, at = preview(api_for, analyst, "select * from {{ ref('stg_customers') }}")
    assert {row[at["name"]] for row in body["rows"]} == {pii.MASK}
    assert {row[at["customer_id"]] for row in body["rows"]} == {10, 11}


def test_a_literal_of_the_same_name_and_unrelated_columns_are_not_masked(duck, analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    confirm("stg_customers", "name")
    body, at = preview(api_for, analyst, "select 'Widget' as name, status from {{ ref('stg_orders') }}")
    assert {row[at["name"]] for row in body["rows"]} == {"Widget"}


def test_the_models_own_confirmed_columns_are_masked(duck, analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    confirm("stg_customers", "name")
    body, at = preview(api_for, analyst, "select customer_id, 'Ada' as name from {{ ref('stg_orders') }}",
                       name="stg_customers")
    assert {row[at["name"]] for row in body["rows"]} == {pii.MASK}


def test_people_with_the_pii_permission_see_values_and_the_read_is_audited(warehouse, legal_analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    confirm("stg_customers", "name")
    body, at = preview(api_for, legal_analyst, JOINED)
    assert [row[at["who"]] for row in body["rows"]] == ["Ada", "Bob"]
    assert "masked" not in body["columns"][at["who"]]
    entry = entries(action="pii.view").get()
    assert (entry.actor, entry.object_type, entry.object_id, entry.source) == (legal_analyst, "model", "my_model",
                                                                              "api")
    assert entry.details == {"where": "preview", "columns": ["who", "shout"], "from": ["stg_customers.name"]}


def test_a_preview_without_confirmed_pii_writes_nothing_to_the_audit_log(duck, legal_analyst, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    PiiTag.objects.create(model="stg_customers", column="name", category="name", confidence=0.9,
                          detected_at=timezone.now())  # suggested, not confirmed: no masking yet
    body, at = preview(api_for, legal_analyst, JOINED)
    assert body["rows"][0][at["who"]] == "Ada" and not entries(action="pii.view").exists()


def test_mask_result_masks_for_analysts_and_audits_for_admins(analyst, admin):
    confirm("customers", "email", "email")

    def result():
        return wh.QueryResult(columns=[{"name": "id", "type": "INTEGER"}, {"name": "Email", "type": "VARCHAR"}],
                              rows=[[1, "ada@example.com"], [2, None]], row_count=2, truncated=False, elapsed_ms=1)

    masked = pii.mask_result(analyst, "customers", result(), where="catalog")
    assert masked.rows == [[1, pii.MASK], [2, None]] and masked.columns[1]["masked"] is True
    shown = pii.mask_result(admin, "customers", result(), where="catalog", source="api")
    assert shown.rows[0][1] == "ada@example.com"
    assert entries(action="pii.view").get().details == {"where": "catalog", "columns": ["Email"]}
