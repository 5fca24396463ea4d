"""A5: API tokens are stored hashed, expire, and stop working when revoked, deactivated or re-roled."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from models_service.models.audit import AuditEntry
from portal import accounts, tokens
from portal.models import ApiToken
from tests.personas import make_user

pytestmark = pytest.mark.django_db


def issue(user, **kwargs):
    return tokens.create_token(user, user, name=kwargs.pop("name", "test"), source="api", **kwargs)


def me(raw: str, keyword: str = "Bearer"):
    return Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"{keyword} {raw}")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "field"} <= set(body["error"])
    return body["error"]


def test_only_the_sha256_and_a_prefix_are_stored(analyst):
    issued = issue(analyst)
    assert issued.raw.startswith(f"dmaas_{issued.token.prefix}_")
    row = ApiToken.objects.values().get(pk=issued.token.pk)
    assert row["digest"] == hashlib.sha256(issued.raw.encode()).hexdigest()
    secret = issued.raw.split("_", 2)[2]
    assert not any(secret in str(value) or issued.raw in str(value) for value in row.values())


def test_a_token_authenticates_with_bearer_and_with_token(analyst):
    issued = issue(analyst)
    for keyword in ("Bearer", "Token", "bearer"):
        response = me(issued.raw, keyword)
        assert response.status_code == 200, response.content
        assert response.json()["username"] == "analyst"
        assert response.json()["authentication"] == "token"
        assert response.json()["token"]["prefix"] == issued.token.prefix


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer dmaas_0000000_x", "Bearer dmaas_00000000_" + "x" * 43, "Token nonsense"],
)
def test_a_wrong_or_malformed_token_is_401(analyst, header):
    issue(analyst)
    response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "authentication_failed"


def test_a_token_expires_after_30_days_by_default(analyst):
    issued = issue(analyst)
    assert issued.token.expires_at - issued.token.created_at == timedelta(days=30)
    with time_machine.travel(timezone.now() + timedelta(days=29, hours=23)):
        assert me(issued.raw).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1)):
        response = me(issued.raw)
    assert response.status_code == 401
    assert "expired" in error_of(response)["message"]


def test_the_default_lifetime_is_a_setting(analyst, settings):
    settings.DMAAS_API_TOKEN_DAYS = 7
    issued = issue(analyst)
    assert issued.token.expires_at - issued.token.created_at == timedelta(days=7)


def test_a_lifetime_beyond_the_maximum_is_refused(analyst, settings):
    client = Client()
    client.force_login(analyst)
    response = client.post("/api/v1/tokens", {"expires_in_days": 400}, content_type="application/json")
    assert response.status_code == 400
    assert "365 days" in error_of(response)["message"]


def test_revoking_through_the_api_stops_the_token_at_once(analyst):
    issued = issue(analyst)
    client = Client()
    client.force_login(analyst)
    assert client.delete(f"/api/v1/tokens/{issued.token.pk}").status_code == 204
    response = me(issued.raw)
    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]
    revoked = AuditEntry.objects.get(action="token.revoke")
    assert (revoked.actor, revoked.source, revoked.details["reason"]) == (analyst, "api", "owner")


def test_deactivating_the_user_revokes_their_tokens(analyst, admin):
    issued = issue(analyst)
    accounts.set_active(admin, analyst, False, source="page")
    assert me(issued.raw).status_code == 401
    issued.token.refresh_from_db()
    assert issued.token.revoked_reason == "deactivated"
    assert AuditEntry.objects.filter(action="user.deactivate", source="page", actor=admin).count() == 1
    assert AuditEntry.objects.filter(action="token.revoke", details__reason="deactivated").count() == 1


def test_a_user_deactivated_behind_the_services_back_is_refused_too(analyst):
    issued = issue(analyst)
    analyst.is_active = False
    analyst.save()
    response = me(issued.raw)
    assert response.status_code == 401
    issued.token.refresh_from_db()
    assert issued.token.revoked_reason == "deactivated"


def test_changing_roles_revokes_every_token(analyst, admin):
    first, second = issue(analyst), issue(analyst, name="second")
    accounts.set_roles(admin, analyst, ["analyst", "reviewer"], source="api")
    assert me(first.raw).status_code == 401
    assert me(second.raw).status_code == 401
    assert ApiToken.objects.filter(user=analyst, revoked_reason="roles").count() == 2
    # A new token carries the new roles.
    assert me(issue(analyst).raw).json()["roles"] == ["analyst", "reviewer"]


def test_a_role_changed_behind_the_services_back_revokes_on_first_use(analyst):
    issued = issue(analyst)
    analyst.groups.add(Group.objects.get_or_create(name="admin")[0])
    response = me(issued.raw)
    assert response.status_code == 401
    assert "roles changed" in error_of(response)["message"]
    entry = AuditEntry.objects.get(action="token.revoke")
    assert entry.source == "policy" and entry.actor is None


def test_last_used_is_recorded_at_most_once_a_minute(analyst):
    issued = issue(analyst)
    assert issued.token.last_used_at is None
    me(issued.raw)
    issued.token.refresh_from_db()
    first = issued.token.last_used_at
    assert first is not None
    me(issued.raw)
    issued.token.refresh_from_db()
    assert issued.token.last_used_at == first
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        me(issued.raw)
    issued.token.refresh_from_db()
    assert issued.token.last_used_at > first


def test_a_token_used_again_within_the_minute_costs_no_write(analyst, django_assert_num_queries):
    """Every API call authenticates: reading the token and its user's roles is the whole cost."""
    issued = issue(analyst)
    tokens.authenticate(issued.raw)  # records last_used_at
    with django_assert_num_queries(2):  # the token with its user; the user's roles
        token = tokens.authenticate(issued.raw)
    assert token.pk == issued.token.pk


def test_a_token_cannot_create_tokens(analyst):
    issued = issue(analyst)
    response = Client().post(
        "/api/v1/tokens",
        {"name": "child"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issued.raw}",
    )
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_a_token_can_revoke_itself(analyst):
    issued = issue(analyst)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.raw}"}
    assert Client().delete(f"/api/v1/tokens/{issued.token.pk}", **auth).status_code == 204
    assert me(issued.raw).status_code == 401


def test_another_users_token_is_invisible_and_cannot_be_revoked(analyst, reviewer):
    theirs = issue(reviewer)
    client = Client()
    client.force_login(analyst)
    assert client.get(f"/api/v1/tokens/{theirs.token.pk}").status_code == 404
    assert client.delete(f"/api/v1/tokens/{theirs.token.pk}").status_code == 404
    assert client.get("/api/v1/tokens").json()["count"] == 0
    assert client.get("/api/v1/tokens?user=reviewer").json()["count"] == 0
    assert me(theirs.raw).status_code == 200


def test_an_admin_lists_creates_and_revokes_anyones_tokens(analyst, admin):
    client = Client()
    client.force_login(admin)
    created = client.post(
        "/api/v1/tokens", {"name": "for ana", "user": "analyst"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["owner"] == "analyst"
    assert created["Cache-Control"] == "no-store"
    raw = created.json()["token"]
    assert me(raw).json()["username"] == "analyst"
    listed = client.get("/api/v1/tokens?user=analyst").json()
    assert [t["name"] for t in listed["results"]] == ["for ana"]
    assert "token" not in listed["results"][0]  # the secret is never listed
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
    assert ApiToken.objects.get().revoked_reason == "admin"
    entry = AuditEntry.objects.get(action="token.create")
    assert (entry.actor, entry.details["owner"]) == (admin, "analyst")


def test_only_admins_create_tokens_for_others(analyst, reviewer):
    client = Client()
    client.force_login(analyst)
    response = client.post("/api/v1/tokens", {"user": "reviewer"}, content_type="application/json")
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_an_account_without_a_role_gets_no_token(outsider, admin):
    with pytest.raises(Exception, match="needs one of these roles"):
        issue(outsider)
    client = Client()
    client.force_login(admin)
    response = client.post("/api/v1/tokens", {"user": "outsider"}, content_type="application/json")
    assert response.status_code == 400
    assert "no role" in error_of(response)["message"]


def test_the_raw_token_is_never_logged_nor_audited(analyst, caplog):
    caplog.set_level(logging.DEBUG)
    issued = issue(analyst)
    me(issued.raw)
    me(issued.raw + "x")
    tokens.revoke_token(analyst, issued.token, source="api")
    me(issued.raw)
    secret = issued.raw.split("_", 2)[2]
    assert secret not in caplog.text
    for entry in AuditEntry.objects.all():
        assert secret not in str(entry.details) and secret not in entry.object_repr


def test_create_token_through_the_command_line_user_is_audited_as_cli():
    user = make_user("bot", "viewer")
    tokens.create_token(user, user, name="ci", source="cli")
    assert AuditEntry.objects.get(action="token.create").source == "cli"
