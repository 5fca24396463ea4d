"""Browsing the audit log: the page and /api/v1/audit, with the same filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from models_service import audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    """Made without the service, so the log holds only what each test writes."""
    from django.contrib.auth.models import Group

    from tests.personas import make_user

    user = make_user("adam")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


@pytest.fixture
def analyst(db):
    from tests.personas import make_user

    return make_user("analyst")


@pytest.fixture
def entries(admin, analyst):
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        audit.record(
            analyst, "change.save", source="page", sha="a1b2c3d4e5", object_type="change", object_id="7"
        )
    audit.record(admin, "role.change", analyst, source="api", details={"before": ["analyst"], "after": []})
    audit.record(None, "token.revoke", source="policy", object_type="apitoken", object_id="3")
    audit.record(admin, "token.create", source="cli", object_type="apitoken", object_id="4")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def actions(response) -> list[str]:
    return [entry["action"] for entry in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["token.create", "token.revoke", "role.change", "change.save"]),
        ("action=token.", ["token.create", "token.revoke"]),
        ("action=role.change", ["role.change"]),
        ("actor=analyst", ["change.save"]),
        ("source=policy", ["token.revoke"]),
        ("object_type=apitoken&object_id=4", ["token.create"]),
        ("sha=A1B2", ["change.save"]),
        (f"until={(timezone.localdate() - timedelta(days=1)).isoformat()}", ["change.save"]),
        (f"since={timezone.localdate().isoformat()}", ["token.create", "token.revoke", "role.change"]),
    ],
)
def test_the_api_filters_the_log(admin, entries, query, expected):
    response = client_for(admin).get(f"/api/v1/audit?{query}")
    assert response.status_code == 200
    assert actions(response) == expected


def test_bad_filters_are_400_naming_the_field(admin, entries):
    response = client_for(admin).get("/api/v1/audit?source=email")
    assert response.status_code == 400 and response.json()["error"]["field"] == "source"
    response = client_for(admin).get("/api/v1/audit?since=2026-05-02&until=2026-05-01")
    assert response.json()["error"]["field"] == "until"


def test_the_system_is_named_as_actor_none(admin, entries):
    found = client_for(admin).get("/api/v1/audit?source=policy").json()["results"][0]
    assert found["actor"] == "" and found["object_id"] == "3"


def test_the_page_lists_and_filters(admin, entries):
    page = client_for(admin).get("/audit/?action=token.").content.decode()
    assert "2 entries." in page
    assert "token.create" in page and "role.change" not in page
    assert '<label for="id_action">Action</label>' in page


def test_the_page_shows_a_bad_filter(admin, entries):
    response = client_for(admin).get("/audit/?sha=zz")
    assert response.status_code == 400
    assert "A commit sha" in response.content.decode()


def test_the_page_paginates_and_keeps_the_filter(admin):
    for n in range(60):
        audit.record(admin, "test.many", source="cli", object_id=str(n))
    page = client_for(admin).get("/audit/?action=test.many").content.decode()
    assert "Page 1 of 2" in page and "action=test.many&amp;page=2" in page


def test_security_may_read_the_log(entries):
    from tests.personas import make_user

    security = make_user("sec", "security")
    assert client_for(security).get("/audit/").status_code == 200
    assert client_for(security).get("/api/v1/audit").status_code == 200


def test_the_log_page_lists_with_a_fixed_number_of_queries(admin, django_assert_max_num_queries):
    for n in range(40):
        audit.record(admin, "test.many", source="cli", object_id=str(n))
    client = client_for(admin)
    client.get("/audit/")
    with django_assert_max_num_queries(8):
        client.get("/audit/")
