"""The API frame: one error shape, CSRF for session calls, pagination, throttling, the schema."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from drf_spectacular.validation import validate_schema

from portal.api import urls as api_urls
from portal.api.frame import ClientRateThrottle
from portal.api.views import MeView
from tests.personas import make_user

pytestmark = pytest.mark.django_db


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def assert_error(response, status: int, code: str, field=None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert {"code", "message", "field"} <= set(error)
    assert error["code"] == code and error["field"] == field
    assert error["message"]
    return error


def test_validation_errors_name_the_field(admin, viewer):
    response = logged_in(admin).patch(
        f"/api/v1/users/{viewer.username}", {"is_active": "perhaps"}, content_type="application/json"
    )
    error = assert_error(response, 400, "invalid", "is_active")
    assert error["details"] == {"is_active": ["Must be a valid boolean."]}


def test_a_body_that_is_not_json_is_a_parse_error(admin, viewer):
    response = logged_in(admin).patch(
        f"/api/v1/users/{viewer.username}", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_401_403_404_405_share_the_shape(analyst):
    assert_error(Client().get("/api/v1/me"), 401, "not_authenticated")
    assert (
        "platform admin"
        in assert_error(logged_in(analyst).get("/api/v1/users"), 403, "permission_denied")["message"]
    )
    assert_error(logged_in(analyst).get("/api/v1/tokens/999999"), 404, "not_found")
    assert_error(logged_in(analyst).put("/api/v1/me"), 405, "method_not_allowed")


def test_an_unknown_api_address_is_a_json_404(analyst):
    assert_error(logged_in(analyst).get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(Client().get("/api/v2/me"), 404, "not_found")


def test_a_crash_is_a_json_500_without_details(analyst, monkeypatch):
    def crash(self, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(MeView, "get", crash)
    response = logged_in(analyst, raise_request_exception=False).get("/api/v1/me")
    error = assert_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert "logged" in error["message"]


def test_too_many_requests_is_429_with_retry_after(analyst, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "3/minute", "anon": "3/minute"})
    client = logged_in(analyst)
    for _ in range(3):
        assert client.get("/api/v1/me").status_code == 200
    response = client.get("/api/v1/me")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_each_token_has_its_own_throttle_budget(analyst, monkeypatch):
    from portal import tokens

    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/minute", "anon": "2/minute"})
    first = tokens.create_token(analyst, analyst, name="a", source="api").raw
    second = tokens.create_token(analyst, analyst, name="b", source="api").raw
    client = Client()
    for _ in range(2):
        assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 200
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 429
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200


def test_session_posts_to_the_api_need_the_csrf_token(analyst):
    client = logged_in(analyst, enforce_csrf_checks=True)
    refused = client.post("/api/v1/tokens", {"name": "x"}, content_type="application/json")
    assert_error(refused, 403, "csrf_failed")
    client.get("/profile/")  # sets the CSRF cookie, as any page does
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/v1/tokens", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_other_unsafe_session_calls_need_it_too(admin, viewer, method):
    client = logged_in(admin, enforce_csrf_checks=True)
    url = f"/api/v1/users/{viewer.username}" if method == "patch" else "/api/v1/tokens/1"
    response = getattr(client, method)(url, json.dumps({"is_active": False}), content_type="application/json")
    assert_error(response, 403, "csrf_failed")
    viewer.refresh_from_db()
    assert viewer.is_active


def test_token_calls_need_no_csrf_token(analyst):
    from portal import tokens

    raw = tokens.create_token(analyst, analyst, name="a", source="api").raw
    client = Client(enforce_csrf_checks=True)
    response = client.delete("/api/v1/tokens/1", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code in (204, 404)


def test_page_forms_need_the_csrf_token(analyst):
    client = logged_in(analyst, enforce_csrf_checks=True)
    response = client.post("/profile/", {"name": "x"})
    assert response.status_code == 403
    assert "could not be sent" in response.content.decode()


def test_lists_are_paginated(admin):
    for n in range(5):
        make_user(f"user{n}", "viewer")
    client = logged_in(admin)
    first = client.get("/api/v1/users?page_size=2").json()
    assert first["count"] == 6 and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"]
    last = client.get("/api/v1/users?page_size=2&page=3").json()
    assert len(last["results"]) == 2 and last["next"] is None
    assert_error(client.get("/api/v1/users?page=99"), 404, "not_found")


def test_the_user_list_costs_the_same_queries_for_few_or_many_users(admin, django_assert_max_num_queries):
    for n in range(20):
        make_user(f"user{n}", "viewer")
    client = logged_in(admin)
    client.get("/api/v1/users")  # warm the session
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/v1/users").json()["results"]) == 21


def test_me_tells_roles_and_permissions(reviewer):
    body = logged_in(reviewer).get("/api/v1/me").json()
    assert body["roles"] == ["reviewer"]
    assert "change.review" in body["permissions"] and "model.edit" not in body["permissions"]
    assert body["authentication"] == "session" and body["token"] is None


def test_the_schema_is_valid_openapi_and_lists_every_endpoint(viewer):
    response = logged_in(viewer).get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)  # raises on an invalid OpenAPI document
    assert schema["openapi"].startswith("3.")
    # Every route of /api/v1/ but the schema and its docs page is described, under the same address.
    routes = {
        "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + ("id" if m[1] == "pk" else m[1]) + "}", str(p.pattern))
        for p in api_urls.urlpatterns
        if str(p.pattern) not in ("schema/", "docs/")
    }
    assert set(schema["paths"]) == routes
    assert {"/api/v1/changes/{id}/models/{name}", "/api/v1/models/{name}/history"} <= routes
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    as_json = logged_in(viewer).get("/api/v1/schema/?format=json")
    assert as_json.json()["info"]["title"] == "dmaas API"


def test_the_schema_generates_without_a_single_warning(tmp_path):
    """--fail-on-warn: a view drf-spectacular cannot describe (no serializer, an unknown type) fails here."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/me" in (tmp_path / "schema.yml").read_text()


def test_the_schema_needs_a_login(client):
    assert_error(client.get("/api/v1/schema/"), 401, "not_authenticated")


def test_the_old_schema_address_redirects(client):
    response = client.get("/api/schema/")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/schema/"


def test_swagger_ui_is_served_from_this_server(viewer):
    page = logged_in(viewer).get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


def test_pages_refuse_framing(client):
    assert client.get("/").headers["X-Frame-Options"] == "DENY"
