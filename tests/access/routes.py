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
    "api/v1/schema/": api(None, "/api/v1/schema/"),
    # Swagger UI is a page for people: not logged in -> the login page.
    "api/v1/docs/": page(None, "/api/v1/docs/"),
    # The old schema address redirects to the versioned one, for every method.
    "api/schema/": public("/api/schema/", dict.fromkeys(METHODS, 301)),
}

# Included URLconfs that are one entry above rather than walked (third-party route sets).
PREFIX_ENTRIES = frozenset({"admin/"})

# Routes that answer an anonymous visitor with content (no login needed). A1: any other route
# that lets an anonymous caller through is a failure, whatever the table says.
PUBLIC_ROUTES = frozenset({"", "healthz", "accounts/login/", "accounts/logout/", "api/schema/"})
