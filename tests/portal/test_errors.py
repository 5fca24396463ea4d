"""Error pages explain themselves; under /api/ they are JSON in the API's shape."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.views import pages

pytestmark = pytest.mark.django_db


def test_403_says_which_roles_are_needed(analyst):
    client = Client()
    client.force_login(analyst)
    response = client.get("/audit/")
    page = response.content.decode()
    assert response.status_code == 403
    assert "This needs one of these roles: platform admin, security." in page
    assert "signed in as <strong>analyst</strong> with the role analyst" in page


def test_404_explains_and_offers_a_way_back(client):
    response = client.get("/no/such/page")
    page = response.content.decode()
    assert response.status_code == 404
    assert "There is nothing here" in page and "/no/such/page" in page and 'href="/"' in page


def test_500_is_a_calm_page(client, monkeypatch):
    def crash(request):
        raise RuntimeError("boom")

    monkeypatch.setattr(pages, "render", lambda *a, **k: crash(None))
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page and "boom" not in page


def test_400_on_a_bad_host_explains(client):
    response = Client(raise_request_exception=False, HTTP_HOST="evil.example").get("/")
    assert response.status_code == 400
    assert "could not be read" in response.content.decode()


def test_api_errors_at_django_level_are_json(client):
    response = Client(raise_request_exception=False, HTTP_HOST="evil.example").get("/api/v1/me")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
