"""Access policy of the explore API (issue 9): entries as in tests/access/routes.py.

Anyone with a role reads a model's rows, profiles, chart data and build history, and reads and saves
charts (catalog.view); a saved chart is changed or deleted by its owner (the analyst here) or a platform
admin, everyone else who may read it gets 403. The matrix never reaches the warehouse: the data
endpoints are called on a model that is not on main (404, after the role is checked), a chart is saved
with an empty body (400), and the chart changed only in its title (its definition is not re-checked).
"""

from __future__ import annotations

from tests.access.routes import LOGGED_IN, Route, _allowed, api

GONE = "/api/v1/models/no_such_model"


def _not_owner(*methods: str) -> dict[tuple[str, str], int]:
    """403 for the personas who read charts but neither own the analyst's chart nor are admins."""
    return {(p, m): 403 for p in LOGGED_IN for m in methods
            if _allowed(p, "catalog.view") and p not in ("analyst", "admin")}


def _chart(objs) -> str:
    return f"/api/v1/charts/{objs['chart'].pk}"


EXPLORE_API_ROUTES: dict[str, Route] = {
    "api/v1/models/<str:name>/rows": api("catalog.view", f"{GONE}/rows", {"GET": 404, "POST": 404}),
    "api/v1/models/<str:name>/profile": api("catalog.view", f"{GONE}/profile?column=id", {"GET": 404}),
    "api/v1/models/<str:name>/chart-data": api(
        "catalog.view", f"{GONE}/chart-data", {"POST": 404}, bodies={"POST": {"x": "id", "aggregate": "count"}}
    ),
    "api/v1/models/<str:name>/build-history": api(
        "catalog.view", lambda objs: f"/api/v1/models/{objs['model']}/build-history"
    ),
    "api/v1/charts": api("catalog.view", "/api/v1/charts", {"GET": 200, "POST": 400}),
    "api/v1/charts/<int:pk>": api(
        "catalog.view", _chart, {"GET": 200, "PATCH": 200, "DELETE": 204},
        bodies={"PATCH": {"title": "Renamed by the matrix"}}, only=_not_owner("PATCH", "DELETE"),
    ),
}
