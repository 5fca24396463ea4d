"""POST /api/v1/validate through DRF's APIClient: the answer's shape, bad input, who may call it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from models_service import changes
from models_service.access import Role
from tests.personas import make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/validate"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_answers_diagnostics_at_source_positions(analyst, project):
    response = client_for(analyst).post(URL, {"sql": "select id, amout\nfrom {{ ref('stg_orders') }}",
                                              "name": "new_model", "change": None}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"diagnostics", "refs", "sources", "columns", "elapsed_ms"}
    [diag] = body["diagnostics"]
    assert set(diag) == {"severity", "code", "message", "line", "column", "end_line", "end_column", "fixes"}
    assert (diag["code"], diag["line"], diag["column"], diag["end_line"], diag["end_column"]) == (
        "unknown_column", 1, 12, 1, 17)
    assert diag["fixes"] == [{"label": "Change to amount", "text": "amount",
                              "replace": {"line": 1, "column": 12, "end_line": 1, "end_column": 17}}]
    assert body["refs"] == ["stg_orders"] and body["sources"] == []
    assert body["columns"] == [{"name": "id", "type": "integer"}, {"name": "amout", "type": None}]


def test_checks_against_the_changes_branch(analyst, project):
    change = changes.open_change(analyst, "Work")
    response = client_for(analyst).post(URL, {"sql": "select 1 as a", "name": "a_model", "change": change.pk},
                                        format="json")
    assert response.status_code == 200 and response.json()["diagnostics"] == []


@pytest.mark.parametrize("body, field", [
    ({"sql": 42, "name": "m"}, "sql"),
    ({"sql": ["select 1"], "name": "m"}, "sql"),
    ({"name": "m"}, "sql"),
    ({"sql": "select 1 as a -- " + "x" * (256 * 1024), "name": "m"}, "sql"),
    ({"sql": "select 1", "name": "no spaces allowed"}, "name"),
    ({"sql": "select 1", "name": ""}, "name"),
    ({"sql": "select 1", "name": "m", "change": "abc"}, "change"),
])
def test_bad_input_is_a_400_in_the_api_error_shape(analyst, project, body, field):
    response = client_for(analyst).post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field and error["message"]


def test_a_viewer_may_not_validate(viewer, project):
    response = client_for(viewer).post(URL, {"sql": "select 1", "name": "m"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_anonymous_is_a_401(project):
    assert APIClient().post(URL, {"sql": "select 1", "name": "m"}, format="json").status_code == 401


def test_another_analysts_draft_is_a_404(analyst, project):
    other = make_user("other_analyst", Role.ANALYST.value)
    draft = changes.open_change(other, "Private")
    response = client_for(analyst).post(URL, {"sql": "select 1", "name": "m", "change": draft.pk}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_change_is_a_404(analyst, project):
    response = client_for(analyst).post(URL, {"sql": "select 1", "name": "m", "change": 999999}, format="json")
    assert response.status_code == 404
