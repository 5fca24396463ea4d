"""B10 with the Django test client: payloads in every stored field (tests/security/xss_world.py), then
every page route of the access matrix (tests/access/routes*.py, so a new page is included the moment
its route has an entry there) rendered as a platform admin, twice: on that data, and with payloads in
the query string (reflected). No page may carry a live payload. Model names with payloads are refused
(B5: tests/models_service/test_bad_names.py covers names in depth). The CSP that stops a payload that
slips through is checked in test_headers.py, the editor's grid and the review diff in a real browser
in test_xss_browser.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from models_service import changes
from models_service.errors import ServiceError
from models_service.project_files import ModelSpec
from tests.access.routes import ROUTES
from tests.access.test_matrix import Objects
from tests.personas import PERSONAS, make_persona
from tests.security.figures import report
from tests.security.xss_world import MARK, PAYLOAD, PAYLOADS, build_world, live_payloads

pytestmark = pytest.mark.django_db
# Found by this suite in pages other engineers are writing; reported to the lead, shown in the figure,
# not failed here until their owners fix them (delete the entry then).
KNOWN: dict[str, str] = {}
SKIP = {"api/v1/docs/": "Swagger UI: its own inline script (hash-allowed by the CSP), no stored data"}


def page_routes() -> list[str]:
    """Page routes an admin may GET: every non-API entry of the access matrix answering 200."""
    return sorted(r for r, entry in ROUTES.items()
                  if not r.startswith("api/") and r not in SKIP and "GET" in entry.methods
                  and entry.expected("admin", "GET") == 200)


def _url(entry, objects) -> str:
    return entry.url(objects) if callable(entry.url) else entry.url


def test_every_page_renders_every_stored_payload_inert(duck):
    users = {name: make_persona(name) for name in PERSONAS}
    objects = Objects(users)
    objects.update(build_world(users, duck))
    client = Client(raise_request_exception=False)
    client.force_login(users["admin"])
    routes = page_routes()
    live, errors, rendered, shown = [], [], 0, 0
    urls = {route: _url(ROUTES[route], objects) for route in routes}
    urls.update({u: u for u in (f"/catalog/{MARK}x/", "/catalog/?" + urlencode({"q": MARK}))})
    for route, url in urls.items():
        for variant, target in (("stored", url), ("reflected", _reflect(url))):
            response = client.get(target)
            if response.status_code >= 500 or (variant == "stored" and route in routes
                                                and response.status_code != 200):
                errors.append(f"{variant} {route} -> {target[:120]}: {response.status_code}")
            if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
                continue
            html = response.content.decode("utf-8", "replace")
            rendered += 1
            shown += MARK in html
            found = live_payloads(html)
            if found:
                live.append(f"{variant} {target}: {found[:3]}")
    report("B10", f"{len(live)} live payloads in {rendered} rendered pages ({len(routes)} page routes of the "
           f"access matrix + search/404, stored and reflected; {shown} pages showed a payload as text); "
           f"{len(errors)} pages failed to render (known, reported: "
           f"{sum(any(e.startswith(k + ' ') for k in KNOWN) for e in errors)})", live=live, errors=errors, routes=routes)
    assert not live, "\n" + "\n".join(live)
    errors = [e for e in errors if not any(e.startswith(k + " ") for k in KNOWN)]
    assert not errors, "\n" + "\n".join(errors)
    assert shown >= 10  # the payloads did reach the pages, shown as text


def _reflect(url: str) -> str:
    joiner = "&" if "?" in url else "?"
    return url + joiner + urlencode({"q": PAYLOAD, "next": "javascript:window.__xss=1", "column": PAYLOAD,
                                     "kind": PAYLOAD, "model": PAYLOAD, "status": PAYLOAD, "page": PAYLOAD})


@pytest.mark.parametrize("name", PAYLOADS[:6])
def test_model_names_with_payloads_are_refused(analyst, name):
    with pytest.raises(ServiceError):
        changes.save_model(analyst, None, name, "select 1 as id\n", ModelSpec(name))


def test_api_answers_are_json_never_html(duck, admin_api):
    """A payload in an API answer is data: the content type is JSON and the browser sniffs nothing."""
    users = {name: make_persona(name) for name in PERSONAS if name != "admin"}
    from django.contrib.auth import get_user_model

    users["admin"] = get_user_model().objects.get(username="admin")
    objects = build_world(users, duck)
    wrong = []
    for url in ("/api/v1/changes", f"/api/v1/changes/{objects['submitted'].pk}/comments",
                f"/api/v1/models/{objects['model']}", "/api/v1/incidents", "/api/v1/runs", "/api/v1/schedules",
                f"/api/v1/changes/{objects['submitted'].pk}/diff"):
        response = admin_api.get(url)
        if response.status_code != 200 or not response["Content-Type"].startswith("application/json") \
                or response.get("X-Content-Type-Options") != "nosniff":
            wrong.append(f"{url}: {response.status_code} {response['Content-Type']} "
                         f"{response.get('X-Content-Type-Options')}")
    assert not wrong, wrong
