"""The editor page itself (the editor bundle is tested in tests/browser/test_editor.py): who may open it,
what it starts with, and that it says which SQL dialect the warehouse speaks."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from models_service import changes
from models_service import repo as repo_module
from tests.personas import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def repo(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield
    repo_module.forget_stores()


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def attribute(html: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', html)
    assert found, f"{name} is missing"
    return found.group(1)


def test_an_analyst_opens_the_editor_with_its_bundle_and_no_outside_address(analyst):
    response = client_for(analyst).get("/editor/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/editor/editor.js" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "everything comes from our own static files"
    assert attribute(html, "data-change") == ""
    assert attribute(html, "data-dialect") == "duckdb"


def test_an_admin_may_open_the_editor(admin):
    assert client_for(admin).get("/editor/").status_code == 200


@pytest.mark.parametrize("persona", ["viewer", "reviewer", "outsider"])
def test_roles_that_do_not_edit_models_get_403(persona, request):
    user = request.getfixturevalue(persona)
    assert client_for(user).get("/editor/").status_code == 403


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get("/editor/?model=orders")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_editor_starts_in_the_analysts_change_with_the_model(analyst):
    change = changes.open_change(analyst, "Monthly revenue")
    html = client_for(analyst).get(f"/editor/?change={change.pk}&model=revenue").content.decode()
    assert attribute(html, "data-change") == str(change.pk)
    assert attribute(html, "data-model") == "revenue"
    assert "Monthly revenue" in html


def test_someone_elses_draft_is_not_used_and_the_page_says_so(analyst):
    other = make_user("other", "analyst")
    change = changes.open_change(other, "Not yours")
    response = client_for(analyst).get(f"/editor/?change={change.pk}&model=revenue")
    html = response.content.decode()
    assert response.status_code == 200
    assert attribute(html, "data-change") == ""
    assert "Not yours" not in html
    assert "will open a new change" in html


def test_a_merged_change_is_not_edited_in_place(analyst):
    change = changes.open_change(analyst, "Already live")
    changes.ChangeRequest.objects.filter(pk=change.pk).update(state="merged")
    html = client_for(analyst).get(f"/editor/?change={change.pk}").content.decode()
    assert attribute(html, "data-change") == ""
    assert "cannot be edited" in html


def test_a_bad_model_name_is_refused_in_plain_words(analyst):
    html = client_for(analyst).get("/editor/?model=drop%20table").content.decode()
    assert attribute(html, "data-model") == ""
    assert "letters, digits and underscores" in html


def test_the_dialect_follows_the_warehouse(analyst, settings):
    settings.DMAAS_WAREHOUSE = "postgresql://warehouse.invalid/analytics"
    html = client_for(analyst).get("/editor/").content.decode()
    assert attribute(html, "data-dialect") == "postgresql"
