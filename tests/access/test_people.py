"""Roles and activation: one service, audited with its source, the same from the API and the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from models_service.access import Role, can, roles_of
from models_service.models.audit import AuditEntry
from portal import accounts, tokens
from portal.models import ApiToken

pytestmark = pytest.mark.django_db


def test_the_role_groups_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {role.value for role in Role}


def test_set_roles_records_before_and_after_with_the_source(admin, analyst):
    assert accounts.set_roles(admin, analyst, ["reviewer"], source="api") is True
    entry = AuditEntry.objects.filter(action="role.change").latest("id")
    assert (entry.actor, entry.source, entry.object_id) == (admin, "api", str(analyst.pk))
    assert entry.details == {"before": ["analyst"], "after": ["reviewer"]}
    analyst.refresh_from_db()
    assert roles_of(analyst) == {Role.REVIEWER}


def test_setting_the_same_roles_changes_and_records_nothing(admin, analyst):
    before = AuditEntry.objects.count()
    assert accounts.set_roles(admin, analyst, ["analyst"], source="page") is False
    assert AuditEntry.objects.count() == before


def test_an_unknown_role_is_refused(admin, analyst):
    with pytest.raises(ValidationError, match="not a role"):
        accounts.set_roles(admin, analyst, ["wizard"], source="api")


def test_the_admin_role_makes_staff_and_losing_it_unmakes(admin, analyst):
    accounts.set_roles(admin, analyst, ["analyst", "admin"], source="api")
    analyst.refresh_from_db()
    assert analyst.is_staff
    accounts.set_roles(admin, analyst, ["analyst"], source="api")
    analyst.refresh_from_db()
    assert not analyst.is_staff


@pytest.mark.parametrize("persona", ["analyst", "reviewer", "viewer", "outsider"])
def test_only_platform_admins_manage_users(request, persona, viewer):
    actor = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        accounts.set_roles(actor, viewer, ["admin"], source="api")
    with pytest.raises(PermissionDenied):
        accounts.set_active(actor, viewer, False, source="api")


def test_an_admin_cannot_demote_or_deactivate_themselves(admin):
    with pytest.raises(PermissionDenied, match="own admin role"):
        accounts.set_roles(admin, admin, ["viewer"], source="page")
    with pytest.raises(PermissionDenied, match="deactivate yourself"):
        accounts.set_active(admin, admin, False, source="page")
    assert accounts.set_roles(admin, admin, ["admin", "security"], source="page") is True


def test_deactivation_is_audited_and_can_be_undone(admin, analyst):
    accounts.set_active(admin, analyst, False, source="api")
    accounts.set_active(admin, analyst, True, source="api")
    actions = list(AuditEntry.objects.filter(object_id=str(analyst.pk)).values_list("action", flat=True))
    assert actions[:2] == ["user.reactivate", "user.deactivate"]
    analyst.refresh_from_db()
    assert analyst.is_active


def test_a_deactivated_user_cannot_log_in_and_has_no_roles(admin, analyst):
    accounts.set_active(admin, analyst, False, source="api")
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "analyst", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    analyst.refresh_from_db()
    assert roles_of(analyst) == frozenset() and not can(analyst, "catalog.view")


def test_the_api_sets_roles_and_deactivates(admin, viewer):
    client = Client()
    client.force_login(admin)
    response = client.patch(
        f"/api/v1/users/{viewer.username}",
        {"roles": ["analyst", "viewer"], "is_active": False},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["roles"] == ["analyst", "viewer"] and response.json()["is_active"] is False
    assert set(AuditEntry.objects.filter(source="api").values_list("action", flat=True)) == {
        "role.change",
        "user.deactivate",
    }


def test_the_api_lists_users_filtered_by_role(admin, analyst, viewer):
    client = Client()
    client.force_login(admin)
    names = [u["username"] for u in client.get("/api/v1/users?role=viewer").json()["results"]]
    assert names == ["viewer"]


def test_the_django_admin_user_form_goes_through_the_same_follow_up(admin, analyst):
    """Groups and activation changed in the admin: audited as from a page, tokens revoked."""
    issued = tokens.create_token(analyst, analyst, name="t", source="api")
    client = Client()
    client.force_login(admin)
    url = f"/admin/auth/user/{analyst.pk}/change/"
    assert client.get(url).status_code == 200
    reviewer_group = Group.objects.get(name="reviewer")
    response = client.post(
        url,
        {
            "username": "analyst",
            "first_name": "",
            "last_name": "",
            "email": "analyst@example.com",
            "is_active": "",
            "groups": [reviewer_group.pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entries = AuditEntry.objects.filter(source="page", actor=admin)
    assert set(entries.values_list("action", flat=True)) >= {"role.change", "user.deactivate", "token.revoke"}
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is not None


def test_the_django_admin_refuses_self_demotion_too(admin):
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{admin.pk}/change/",
        {
            "username": "admin",
            "email": "admin@example.com",
            "is_active": "",
            "groups": [],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with errors
    page = response.content.decode()
    assert "You cannot deactivate yourself" in page and "own admin role" in page
    admin.refresh_from_db()
    assert admin.is_active and roles_of(admin) == {Role.ADMIN}


def test_a_platform_admin_may_use_the_django_admin_but_not_edit_the_audit_log(admin, analyst):
    accounts.set_roles(admin, analyst, ["reviewer"], source="page")
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/auth/user/").status_code == 200
    entry = AuditEntry.objects.latest("id")
    page = client.get(f"/admin/models_service/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert (
        client.post(f"/admin/models_service/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_superuser_cannot_edit_the_audit_log_either(admin_client, analyst):
    from models_service import audit

    entry = audit.record(None, "test.thing", source="cli")
    assert (
        admin_client.post(f"/admin/models_service/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    with pytest.raises(PermissionError):
        entry.delete()
    entry.action = "changed"
    with pytest.raises(PermissionError):
        entry.save()
