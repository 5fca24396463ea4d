"""The access policy of every route, as the tests expect it: the table the access matrix checks.

Every URL pattern of the portal (walked from django.urls.get_resolver()) must have an entry here,
keyed by its pattern string; a route without one fails tests/access/test_matrix.py. So when you
add a page or an endpoint, add its line here, saying who may call it with which method.

Who is allowed is not repeated here: `page(action)` and `api(action)` take it from
models_service.access.POLICY, so the matrix checks the code against the policy table. The
builders encode the house rules:

- page:   anonymous -> 302 to the login page (any method); a role without the action -> 403;
          an allowed role -> the status in `ok` for that method, 405 for a method not in `ok`.
- api:    the same, but anonymous -> 401 (with WWW-Authenticate).
- public: the same answer for everyone, logged in or not.

`hide` lists personas who may call the route but must not see the object (querysets filtered by
user: another user's token is a 404, not a 403). `only` overrides single cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models_service.access import POLICY, Role
from tests.personas import PERSONAS

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ROLES_OF = {
    "anonymous": frozenset(),
    **{name: frozenset(Role(r) for r in roles) for name, roles in PERSONAS.items()},
}
LOGIN = "login"  # expected: a 302 to the login page
ADMIN_LOGIN = "admin-login"  # expected: a 302 to the Django admin's login page


@dataclass
class Route:
    expected: Callable[[str, str], Any]  # (persona, method) -> status or LOGIN/ADMIN_LOGIN
    url: Callable[[dict[str, Any]], str] | str  # the concrete URL, given the fixtures' objects
    bodies: dict[str, dict] = field(default_factory=dict)  # method -> JSON or form body
    json: bool = False  # send bodies as JSON
    methods: tuple[str, ...] = METHODS


def _allowed(persona: str, action: str | None) -> bool:
    if persona == "anonymous":
        return False
    return action is None or bool(ROLES_OF[persona] & POLICY[action])


def _rule(anonymous: Any, action: str | None, ok: dict[str, int], hide=(), only=None):
    only = only or {}

    def expected(persona: str, method: str) -> Any:
        if (persona, method) in only:
            return only[(persona, method)]
        if persona == "anonymous":
            return anonymous
        if not _allowed(persona, action):
            return 403
        if method not in ok:
            return 405
        return 404 if persona in hide else ok[method]

    return expected


def page(action: str | None, url: Any, ok: dict[str, int] | None = None, **kw: Any) -> Route:
    rule = _rule(LOGIN, action, ok or {"GET": 200}, kw.pop("hide", ()), kw.pop("only", None))
    return Route(rule, url, **kw)


def api(action: str | None, url: Any, ok: dict[str, int] | None = None, **kw: Any) -> Route:
    rule = _rule(401, action, ok or {"GET": 200}, kw.pop("hide", ()), kw.pop("only", None))
    return Route(rule, url, json=True, **kw)


def public(url: Any, ok: dict[str, int], only: dict | None = None, **kw: Any) -> Route:
    only = only or {}

    def expected(persona: str, method: str) -> Any:
        return only.get((persona, method), ok.get(method, 405))

    return Route(expected, url, **kw)


LOGGED_IN = [name for name in PERSONAS]
# Who may neither edit models nor review changes: the change pages answer them 403 for any method.
SEEING_CHANGES_DENIED = {
    (p, m): 403
    for p in LOGGED_IN
    for m in METHODS
    if not (_allowed(p, "model.edit") or _allowed(p, "change.view_all"))
}


def edit_denied(*methods: str) -> dict[tuple[str, str], int]:
    """Cells of a route that anyone may read but whose `methods` write (model.edit): 403 for the
    personas who read but do not edit."""
    return {
        (p, m): 403
        for p in LOGGED_IN
        for m in methods
        if _allowed(p, "catalog.view") and not _allowed(p, "model.edit")
    }


# The analyst's draft change: personas who may read changes but not this one get 404 for it.
DRAFT_HIDDEN = ("reviewer", "viewer")


def _change_url(suffix: str) -> Callable[[dict[str, Any]], str]:
    return lambda objs: f"/api/v1/changes/{objs['change'].pk}{suffix}"


ROUTES: dict[str, Route] = {
    "": public("/", {"GET": 200}),
    "healthz": public("/healthz", {"GET": 200}),
    # Django's FormView treats PUT as POST (an empty form: shown again with errors).
    # A logged-in user is sent on from the login page, whatever the method.
    "accounts/login/": public(
        "/accounts/login/",
        {"GET": 200, "POST": 200, "PUT": 200},
        only={(p, m): 302 for p in LOGGED_IN for m in METHODS},
    ),
    "accounts/logout/": public("/accounts/logout/", {"POST": 302}),
    "accounts/password/": page(None, "/accounts/password/", {"GET": 200, "POST": 200, "PUT": 200}),
    "accounts/password/done/": page(None, "/accounts/password/done/"),
    # Anyone logged in sees their profile; creating a token (POST) needs a role.
    "profile/": page(
        None,
        "/profile/",
        {"GET": 200, "POST": 200},
        bodies={"POST": {"name": "matrix"}},
        only={("outsider", "POST"): 403},
    ),
    # The profile page revokes only one's own tokens; the token belongs to the analyst.
    "profile/tokens/<int:pk>/revoke/": page(
        None,
        lambda objs: f"/profile/tokens/{objs['token'].pk}/revoke/",
        {"POST": 302},
        hide=("reviewer", "admin", "viewer", "outsider"),
    ),
    "audit/": page("audit.view", "/audit/"),
    # Change requests. Listing and reading a change needs a role that edits (model.edit) or reviews
    # (change.view_all); viewers and outsiders get 403 whatever the method. The change is the
    # analyst's draft: a reviewer may not see it (404); a platform admin may see and edit it.
    "changes/": page(None, "/changes/", only=SEEING_CHANGES_DENIED),
    "changes/new/": page(
        "model.edit", "/changes/new/", {"GET": 200, "POST": 302}, bodies={"POST": {"title": "matrix"}}
    ),
    "changes/<int:pk>/": page(
        None, lambda objs: f"/changes/{objs['change'].pk}/", hide=("reviewer",), only=SEEING_CHANGES_DENIED
    ),
    # State moves answer with a redirect to the change page, with a message when the move is refused.
    **{
        f"changes/<int:pk>/{verb}/": page(
            "model.edit", lambda objs, verb=verb: f"/changes/{objs['change'].pk}/{verb}/", {"POST": 302}
        )
        for verb in ("update", "submit", "withdraw", "abandon")
    },
    # The model form: an empty POST is a form with errors (400).
    "changes/<int:pk>/models/new/": page(
        "model.edit", lambda objs: f"/changes/{objs['change'].pk}/models/new/", {"GET": 200, "POST": 400}
    ),
    "changes/<int:pk>/models/<str:name>/edit/": page(
        "model.edit",
        lambda objs: f"/changes/{objs['change'].pk}/models/{objs['model']}/edit/",
        {"GET": 200, "POST": 400},
    ),
    "changes/<int:pk>/models/<str:name>/delete/": page(
        "model.edit",
        lambda objs: f"/changes/{objs['change'].pk}/models/{objs['model']}/delete/",
        {"POST": 302},
    ),
    "models/<str:name>/history/": page("catalog.view", lambda objs: f"/models/{objs['model']}/history/"),
    # Restoring without a version goes back to the history with a message; editing opens a change.
    "models/<str:name>/revert/": page(
        "model.edit", lambda objs: f"/models/{objs['model']}/revert/", {"POST": 302}
    ),
    "models/<str:name>/edit/": page(
        "model.edit", lambda objs: f"/models/{objs['model']}/edit/", {"POST": 302}
    ),
    # The editor page; the API above does its work.
    "editor/": page("model.edit", "/editor/"),
    # The Django admin (an included URLconf, taken as one entry): staff only, which platform
    # admins are; it sends everyone else to its own login page. Its own pages check the rest.
    "admin/": public(
        "/admin/",
        {"GET": ADMIN_LOGIN},
        only={("admin", "GET"): 200},
        methods=("GET",),
    ),
    "api/v1/me": api(None, "/api/v1/me"),
    "api/v1/tokens": api(
        "token.manage_own", "/api/v1/tokens", {"GET": 200, "POST": 201}, bodies={"POST": {"name": "matrix"}}
    ),
    "api/v1/tokens/<int:pk>": api(
        "token.manage_own",
        lambda objs: f"/api/v1/tokens/{objs['token'].pk}",
        {"GET": 200, "DELETE": 204},
        hide=("reviewer", "viewer"),
    ),
    "api/v1/users": api("user.manage", "/api/v1/users"),
    "api/v1/users/<str:username>": api(
        "user.manage",
        lambda objs: f"/api/v1/users/{objs['viewer'].username}",
        {"GET": 200, "PATCH": 200},
        bodies={"PATCH": {"is_active": True}},
    ),
    "api/v1/audit": api("audit.view", "/api/v1/audit"),
    # Change requests through the API. Reading needs any role (catalog.view), but a draft is its
    # author's: reviewers and viewers get 404 for it, platform admins see it. Writes need model.edit
    # (reviewers, viewers: 403) and answer as the service decides for the analyst's draft.
    "api/v1/changes": api(
        "catalog.view",
        "/api/v1/changes",
        {"GET": 200, "POST": 201},
        bodies={"POST": {"title": "matrix"}},
        only=edit_denied("POST"),
    ),
    "api/v1/changes/<int:pk>": api("catalog.view", _change_url(""), hide=DRAFT_HIDDEN),
    **{
        f"api/v1/changes/<int:pk>/{part}": api("catalog.view", _change_url(f"/{part}"), hide=DRAFT_HIDDEN)
        for part in ("commits", "diff", "models")
    },
    # A draft can be submitted, abandoned or updated (main has nothing new: 200); withdrawing a
    # draft that was never submitted is a 409.
    **{
        f"api/v1/changes/<int:pk>/{verb}": api("model.edit", _change_url(f"/{verb}"), {"POST": code})
        for verb, code in (("submit", 200), ("abandon", 200), ("update", 200), ("withdraw", 409))
    },
    # Merging is a reviewer's: the draft is hidden from the reviewer (404); for the admin it is not
    # approved (409).
    "api/v1/changes/<int:pk>/merge": api(
        "change.review", _change_url("/merge"), {"POST": 409}, hide=("reviewer",)
    ),
    "api/v1/changes/<int:pk>/models/<str:name>": api(
        "catalog.view",
        lambda objs: f"/api/v1/changes/{objs['change'].pk}/models/{objs['model']}",
        {"GET": 200, "PUT": 200, "DELETE": 200},
        bodies={"PUT": {"sql": "select 3 as id\n", "description": "matrix"}},
        hide=DRAFT_HIDDEN,
        only=edit_denied("PUT", "DELETE"),
    ),
    "api/v1/changes/<int:pk>/models/<str:name>/rename": api(
        "model.edit",
        lambda objs: f"/api/v1/changes/{objs['change'].pk}/models/{objs['model']}/rename",
        {"POST": 200},
        bodies={"POST": {"new_name": "orders_renamed"}},
    ),
    "api/v1/changes/<int:pk>/models/<str:name>/test": api(
        "model.edit",
        lambda objs: f"/api/v1/changes/{objs['change'].pk}/models/{objs['model']}/test",
        {"POST": 202},
    ),
    # A test run is its requester's (the analyst's); a platform admin may see it too.
    "api/v1/test-runs/<int:pk>": api("model.edit", lambda objs: f"/api/v1/test-runs/{objs['test_run'].pk}"),
    "api/v1/models": api("catalog.view", "/api/v1/models"),
    "api/v1/models/<str:name>": api("catalog.view", lambda objs: f"/api/v1/models/{objs['model']}"),
    "api/v1/models/<str:name>/history": api(
        "catalog.view", lambda objs: f"/api/v1/models/{objs['model']}/history"
    ),
    "api/v1/models/<str:name>/versions/<str:sha>/diff": api(
        "catalog.view", lambda objs: f"/api/v1/models/{objs['model']}/versions/{objs['version']}/diff"
    ),
    # Reverting without saying to which version is a 400 (the body names the version).
    "api/v1/models/<str:name>/revert": api(
        "model.edit", lambda objs: f"/api/v1/models/{objs['model']}/revert", {"POST": 400}
    ),
    "api/v1/project": api("catalog.view", "/api/v1/project"),
    "api/v1/validate": api(
        "model.edit",
        "/api/v1/validate",
        {"POST": 200},
        bodies={"POST": {"sql": "select 1 as id", "name": "matrix"}},
    ),
    # A preview without SQL is a 400 (the matrix does not reach the warehouse).
    "api/v1/preview": api("model.edit", "/api/v1/preview", {"POST": 400}),
    "api/v1/schema/": api(None, "/api/v1/schema/"),
    # Swagger UI is a page for people: not logged in -> the login page.
    "api/v1/docs/": page(None, "/api/v1/docs/"),
    # The old schema address redirects to the versioned one, for every method.
    "api/schema/": public("/api/schema/", dict.fromkeys(METHODS, 301)),
}

# The review pages and the review API have their own files (issue 6).
from tests.access.routes_catalog_api import CATALOG_API_ROUTES  # noqa: E402
from tests.access.routes_catalog_pages import CATALOG_PAGE_ROUTES  # noqa: E402
from tests.access.routes_explore_api import EXPLORE_API_ROUTES  # noqa: E402
from tests.access.routes_explore_pages import EXPLORE_PAGE_ROUTES  # noqa: E402
from tests.access.routes_observe_api import OBSERVE_API_ROUTES  # noqa: E402
from tests.access.routes_observe_pages import OBSERVE_PAGE_ROUTES  # noqa: E402
from tests.access.routes_pii_api import PII_API_ROUTES  # noqa: E402
from tests.access.routes_pii_pages import PII_PAGE_ROUTES  # noqa: E402
from tests.access.routes_review_api import REVIEW_API_ROUTES  # noqa: E402
from tests.access.routes_review_pages import REVIEW_PAGE_ROUTES  # noqa: E402
from tests.access.routes_runs_api import RUN_API_ROUTES  # noqa: E402
from tests.access.routes_runs_pages import RUN_PAGE_ROUTES  # noqa: E402
from tests.access.routes_sla_api import SLA_API_ROUTES  # noqa: E402
from tests.access.routes_sla_pages import SLA_PAGE_ROUTES  # noqa: E402

ROUTES.update(REVIEW_PAGE_ROUTES)
ROUTES.update(REVIEW_API_ROUTES)
ROUTES.update(RUN_API_ROUTES)
ROUTES.update(RUN_PAGE_ROUTES)
ROUTES.update(SLA_API_ROUTES)
ROUTES.update(SLA_PAGE_ROUTES)
ROUTES.update(PII_API_ROUTES)
ROUTES.update(PII_PAGE_ROUTES)
ROUTES.update(OBSERVE_API_ROUTES)
ROUTES.update(OBSERVE_PAGE_ROUTES)
ROUTES.update(CATALOG_API_ROUTES)
ROUTES.update(CATALOG_PAGE_ROUTES)
ROUTES.update(EXPLORE_API_ROUTES)
ROUTES.update(EXPLORE_PAGE_ROUTES)

# Included URLconfs that are one entry above rather than walked (third-party route sets).
PREFIX_ENTRIES = frozenset({"admin/"})

# Routes that answer an anonymous visitor with content (no login needed). A1: any other route
# that lets an anonymous caller through is a failure, whatever the table says.
PUBLIC_ROUTES = frozenset({"", "healthz", "accounts/login/", "accounts/logout/", "api/schema/"})
