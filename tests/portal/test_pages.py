import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db


def test_home_invites_an_anonymous_visitor_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/accounts/login/"' in response.content
    assert b"<main" in response.content and b'aria-label="Main"' in response.content


def test_home_greets_a_signed_in_user_and_links_staff_to_admin(admin_client):
    page = admin_client.get("/").content.decode()
    assert "Signed in as <strong>admin</strong>" in page
    assert 'href="/admin/"' in page


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


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content
