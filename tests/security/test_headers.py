"""A6 (CSRF, CORS, framing), A8 (deploy check, weak SECRET_KEY) and B10's Content-Security-Policy,
each printed as a figure. A8 itself is tested in depth in tests/portal/test_settings.py (reused
here); A1-A7's route x role matrix is tests/access/."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.portal.test_settings import PRODUCTION, start_django
from tests.security.conftest import MIDDLEWARE_PATH
from tests.security.figures import report

pytestmark = pytest.mark.django_db
PAGES = ["/", "/editor/", "/changes/", "/review/", "/runs/", "/catalog/", "/profile/", "/admin/", "/api/v1/docs/"]


def _directives(policy: str) -> dict[str, list[str]]:
    parts = [p.strip().split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def test_the_security_middleware_is_installed():
    """Until settings.MIDDLEWARE lists it, the suites add it themselves (conftest): this says so."""
    import portal.settings as configured  # the module itself: the suites' fixture changes django.conf's copy

    installed = MIDDLEWARE_PATH in configured.MIDDLEWARE
    report("B10-CSP-installed", f"{MIDDLEWARE_PATH} in settings.MIDDLEWARE: {installed}")
    assert installed, f'add "{MIDDLEWARE_PATH}" to MIDDLEWARE after SecurityMiddleware (portal/settings.py)'


def test_every_page_has_a_csp_that_blocks_inline_script(admin):
    client = Client()
    client.force_login(admin)
    wrong, seen = [], 0
    for url in PAGES:
        response = client.get(url)
        policy = response.get("Content-Security-Policy", "")
        d = _directives(policy)
        script = d.get("script-src", d.get("default-src", []))
        if response.status_code != 200 or not policy:
            wrong.append(f"{url}: {response.status_code}, CSP {policy!r}")
            continue
        seen += 1
        if "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script or "data:" in script:
            wrong.append(f"{url}: script-src {script}")
        if d.get("object-src") != ["'none'"] or d.get("frame-ancestors") != ["'none'"]:
            wrong.append(f"{url}: object-src/frame-ancestors {d.get('object-src')} {d.get('frame-ancestors')}")
        if url == "/api/v1/docs/" and not any(s.startswith("'sha256-") for s in script):
            wrong.append(f"{url}: Swagger UI's inline script is not hash-allowed: {script}")
    report("B10-CSP", f"{seen}/{len(PAGES)} pages carry a CSP with script-src 'self' (no inline, no eval; "
           f"Swagger UI by hash), object-src/frame-ancestors 'none'", wrong=wrong)
    assert not wrong, wrong


def test_csrf_cors_and_framing(admin, admin_api):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)
    page_post = browser.post("/changes/new/", {"title": "no token"})
    api_post = browser.post("/api/v1/changes", {"title": "no token"}, content_type="application/json")
    logout = browser.post("/accounts/logout/")
    token_post = admin_api.post("/api/v1/changes", {"title": "bearer needs no CSRF"}, format="json")
    evil = {"HTTP_ORIGIN": "https://evil.example"}
    cors = [admin_api.get("/api/v1/me", **evil), admin_api.options("/api/v1/changes", **evil,
                                                                     HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")]
    open_cors = [r.get("Access-Control-Allow-Origin") for r in cors if r.get("Access-Control-Allow-Origin")]
    frames = {url: browser.get(url).get("X-Frame-Options") for url in ("/", "/editor/", "/accounts/login/")}
    report("A6", f"session POST without CSRF token: page {page_post.status_code}, API {api_post.status_code}, "
           f"logout {logout.status_code}; bearer POST {token_post.status_code}; CORS allow-origin for "
           f"evil.example: {open_cors or 'none'}; X-Frame-Options {sorted(set(frames.values()))}")
    assert page_post.status_code == 403 and api_post.status_code == 403 and logout.status_code == 403
    assert token_post.status_code == 201
    assert not open_cors
    assert set(frames.values()) == {"DENY"}


def test_deploy_check_is_clean_and_weak_keys_refuse_startup(tmp_path):
    deploy = start_django(tmp_path, PRODUCTION, "", "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    refused = {}
    for label, key in (("short", "too-short-Zq8"), ("default", "django-insecure-" + "x1y2z3" * 10),
                       ("placeholder", "change-me-to-a-long-random-string-" + "abcdefgh" * 4)):
        result = start_django(tmp_path, {"DMAAS_DEBUG": "0", "DMAAS_SECRET_KEY": key})
        refused[label] = result.returncode != 0 and "ImproperlyConfigured" in result.stderr
    unset = start_django(tmp_path, {"DMAAS_DEBUG": "0"})
    refused["unset"] = unset.returncode != 0
    report("A8", f"check --deploy --fail-level WARNING: exit {deploy.returncode}; startup refused with a "
           f"weak SECRET_KEY: {sum(refused.values())}/{len(refused)} ({', '.join(refused)})", refused=refused)
    assert deploy.returncode == 0, deploy.stderr
    assert all(refused.values()), refused
