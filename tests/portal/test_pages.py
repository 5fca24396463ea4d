import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db


def test_home_invites_an_anonymous_visitor_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/accounts/login/"' in response.content
    assert b"<main" in response.content and b'aria-label="Main"' in response.content


def test_home_greets_a_signed_in_user_and_links_admins_to_admin(admin_client):
    page = admin_client.get("/").content.decode()
    assert "Signed in as <strong>admin</strong>" in page
    assert 'href="/admin/"' in page


def test_home_tells_a_user_without_a_role_what_to_do(client, outsider):
    client.force_login(outsider)
    page = client.get("/").content.decode()
    assert "no role yet" in page


def test_home_names_the_roles(client, reviewer):
    client.force_login(reviewer)
    assert "Your roles: <strong>Reviewer</strong>" in client.get("/").content.decode()


def test_login_page_has_labelled_fields(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page


def test_login_with_good_credentials_goes_home(client, django_user_model):
    django_user_model.objects.create_user("ada", password="correct horse battery")
    response = client.post("/accounts/login/", {"username": "ada", "password": "correct horse battery"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "Signed in as <strong>ada</strong>" in client.get("/").content.decode()


def test_login_with_a_wrong_password_says_so(client, django_user_model):
    django_user_model.objects.create_user("ada", password="correct horse battery")
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_logout_is_a_post_and_goes_home(admin_client):
    response = admin_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "Signed in as" not in admin_client.get("/").content.decode()


def test_admin_sends_anonymous_visitors_to_its_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/login/").status_code == 200


def test_admin_opens_for_a_superuser(admin_client):
    assert admin_client.get("/admin/").status_code == 200


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("portal.views.health.connection.cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_openapi_schema_is_served_under_the_versioned_api(client, viewer):
    client.force_login(viewer)
    response = client.get("/api/schema/", follow=True)
    assert response.redirect_chain == [("/api/v1/schema/", 301)]
    assert response.status_code == 200
    assert b"openapi" in response.content


def test_password_change_works_and_keeps_the_user_logged_in(client, analyst):
    client.force_login(analyst)
    page = client.get("/accounts/password/").content.decode()
    assert '<label for="id_old_password">Old password</label>' in page
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "correct horse battery staple",
            "new_password1": "another fine passphrase 9",
            "new_password2": "another fine passphrase 9",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    assert client.get("/accounts/password/done/").status_code == 200
    analyst.refresh_from_db()
    assert analyst.check_password("another fine passphrase 9")


def test_profile_lists_roles_and_links_to_the_password_change(client, reviewer):
    client.force_login(reviewer)
    page = client.get("/profile/").content.decode()
    assert "<dt>Roles</dt>" in page and "Reviewer" in page
    assert 'href="/accounts/password/"' in page


def test_profile_creates_a_token_shown_once_and_revokes_it(client, analyst):
    client.force_login(analyst)
    response = client.post("/profile/", {"name": "export", "days": "7"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # the page with the token is never cached
    raw = page.split('id="new-token" class="token-value" type="text" value="', 1)[1].split('"', 1)[0]
    assert raw.startswith("dmaas_") and "shown only this once" in page
    again = client.get("/profile/").content.decode()
    assert raw not in again and "export" in again
    from portal.models import ApiToken

    token = ApiToken.objects.get(user=analyst)
    assert (token.expires_at - token.created_at).days == 7
    response = client.post(f"/profile/tokens/{token.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_reason == "owner"


def test_profile_refuses_a_token_lifetime_beyond_the_maximum(client, analyst):
    client.force_login(analyst)
    response = client.post("/profile/", {"name": "x", "days": "1000"})
    assert response.status_code == 400
    assert "less than or equal to 365" in response.content.decode()
