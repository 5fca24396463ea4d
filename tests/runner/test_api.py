"""POST /api/v1/preview as the editor calls it: the answer's shape, the error's shape, who may call."""

from __future__ import annotations

import pytest

from models_service import changes
from models_service.project_files import ModelSpec
from tests.runner.conftest import MAIN_FILES, commit_to_main, seed_production

pytestmark = pytest.mark.django_db


def test_preview_answers_rows_as_json(analyst, duck, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    change = changes.open_change(analyst, "Orders")
    changes.save_model(analyst, change, "orders", "select 1 as x\n", ModelSpec(name="orders"))
    answer = api_for(analyst).post("/api/v1/preview", {
        "sql": "select order_id, amount, ordered_on from {{ ref('stg_orders') }} order by 1",
        "name": "orders", "change": change.pk, "limit": 2}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert set(body) == {"columns", "rows", "row_count", "truncated", "elapsed_ms", "compiled_sql"}
    assert body["columns"][2] == {"name": "ordered_on", "type": "DATE"}
    assert body["rows"] == [[1, "12.50", "2024-01-02"], [2, "7.25", "2024-01-03"]]
    assert body["row_count"] == 2 and body["truncated"] is True


def test_preview_errors_name_the_line_and_field(analyst, duck, api_for):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    answer = api_for(analyst).post("/api/v1/preview", {
        "sql": "select\n  order_id,\n  nope\nfrom {{ ref('stg_orders') }}", "name": "orders"}, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "preview_failed" and error["field"] == "sql"
    assert error["line"] == 3 and error["column"] == 3
    assert "nope" in error["message"] and "Binder" not in error["message"]


def test_preview_validates_its_body_and_the_role(analyst, reviewer, api_for):
    assert api_for(analyst).post("/api/v1/preview", {}, format="json").status_code == 400
    bad_name = api_for(analyst).post("/api/v1/preview", {"sql": "select 1", "name": "../x"}, format="json")
    assert bad_name.status_code == 400 and bad_name.json()["error"]["field"] == "name"
    assert api_for(reviewer).post("/api/v1/preview", {"sql": "select 1", "name": "x"}, format="json").status_code == 403
    assert api_for(analyst).get("/api/v1/preview").status_code == 405
