"""In a real Chromium: each role logs in and sees its menu; a token made on the profile page calls
the API over real HTTP; the shell fits a 1280 px window and a small laptop screen."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.personas import PASSWORD, make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("banner")).to_contain_text(f"Signed in as {username}")


def call_me(base: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.parametrize(
    ("persona", "menu"),
    [
        ("analyst", ["Home", "Editor", "My changes", "Runs", "Incidents", "Anomalies", "Catalog"]),
        ("reviewer", ["Home", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog"]),
        ("viewer", ["Home", "Runs", "Catalog"]),
        ("admin", ["Home", "Editor", "My changes", "Review queue", "Runs", "Incidents", "Anomalies", "Catalog",
                   "SLA dashboard", "Audit log", "Admin"]),
    ],
)
def test_each_role_logs_in_and_sees_only_its_menu(page: Page, live_server, persona, menu):
    make_persona(persona)
    log_in(page, live_server.url, persona)
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_text(menu)
    if "Audit log" in menu:
        links.filter(has_text="Audit log").click()
        expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
        expect(links.filter(has_text="Audit log")).to_have_attribute("aria-current", "page")
    else:
        page.goto(f"{live_server.url}/audit/")
        expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("platform admin, security")


def test_a_token_made_on_the_profile_page_calls_the_api_until_revoked(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    page.get_by_role("link", name="Signed in as analyst").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()

    page.get_by_label("Name").fill("laptop script")
    page.get_by_role("button", name="Create token").click()
    field = page.get_by_label("New API token")
    expect(field).to_be_visible()
    token = field.input_value()
    assert token.startswith("dmaas_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copy-status")).not_to_be_empty()

    status, body = call_me(live_server.url, token)
    assert status == 200 and body["username"] == "analyst" and body["authentication"] == "token"

    page.goto(f"{live_server.url}/profile/")
    expect(page.get_by_label("New API token")).to_have_count(0)  # shown once only
    page.get_by_role("button", name="Revoke token laptop script").click()
    expect(page.get_by_role("status").first).to_contain_text("is revoked")
    status, body = call_me(live_server.url, token)
    assert status == 401 and "revoked" in body["error"]["message"]


def test_the_lockout_page_explains_itself(page: Page, live_server, settings):
    make_persona("viewer")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("viewer")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Too many failed log-ins")).to_be_visible()


@pytest.mark.parametrize("size", [{"width": 1280, "height": 800}, {"width": 1366, "height": 768}])
def test_pages_fit_the_window_without_sideways_scrolling(page: Page, live_server, size):
    make_persona("admin")
    page.set_viewport_size(size)
    log_in(page, live_server.url, "admin")
    for path in ("/", "/profile/", "/audit/", "/accounts/password/", "/review/", "/review/policy/", "/runs/",
                 "/runs/next/", "/schedules/", "/schedules/new/", "/incidents/"):
        page.goto(f"{live_server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px too wide at {size}"


def test_the_keyboard_reaches_the_skip_link_first(page: Page, live_server):
    page.goto(live_server.url)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
