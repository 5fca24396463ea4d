"""The main navigation shows what the user's roles allow, and only pages that exist."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from models_service.access import POLICY
from portal import nav

pytestmark = pytest.mark.django_db


def nav_labels(user) -> list[str]:
    client = Client()
    if user is not None:
        client.force_login(user)
    page = client.get("/").content.decode()
    menu = page.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r">([^<>]+)</a>", menu)


def test_every_entry_names_an_action_of_the_policy_table():
    for item in nav.NAV:
        assert item.action in POLICY, item


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (None, ["Home"]),
        ("outsider", ["Home"]),
        ("viewer", ["Home", "Runs", "Catalog"]),
        ("analyst", ["Home", "Editor", "My changes", "Runs", "Incidents", "Anomalies", "Catalog"]),
        ("reviewer", ["Home", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog"]),
        ("admin", ["Home", "Editor", "My changes", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog", "SLA dashboard",
                   "Audit log", "Admin"]),
    ],
)
def test_each_role_sees_what_exists_and_is_allowed(request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None
    assert nav_labels(user) == expected


def _page(request):
    return HttpResponse("a page")


# A later issue adds its pages under the names the nav table already lists.
later = [
    path("catalog/", _page, name="catalog"),
    path("editor/", _page, name="editor"),
    path("review/", _page, name="review-queue"),
    path("sla/", _page, name="sla-dashboard"),
]
urlpatterns = [path("", include("portal.urls")), *later]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("viewer", ["Home", "Runs", "Catalog"]),
        ("analyst", ["Home", "Editor", "My changes", "Runs", "Incidents", "Anomalies", "Catalog"]),
        ("reviewer", ["Home", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog"]),
        (
            "admin",
            ["Home", "Editor", "My changes", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog", "SLA dashboard",
             "Audit log", "Admin"],
        ),
    ],
)
def test_an_entry_appears_once_its_page_exists(request, persona, expected):
    assert nav_labels(request.getfixturevalue(persona)) == expected


def test_the_current_page_is_marked(admin):
    client = Client()
    client.force_login(admin)
    assert '<a href="/audit/" aria-current="page">Audit log</a>' in client.get("/audit/").content.decode()


def test_a_run_page_marks_runs_and_an_incident_page_marks_incidents(admin):
    from runner.models import Run

    client = Client()
    client.force_login(admin)
    run = Run.objects.create(target="analytics", status="success")
    assert '<a href="/runs/" aria-current="page">Runs</a>' in client.get(f"/runs/{run.pk}/").content.decode()
    assert '<a href="/incidents/" aria-current="page">Incidents</a>' in client.get("/incidents/").content.decode()
