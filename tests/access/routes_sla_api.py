"""Access policy of the API of the service agreement (issue 8): entries as in tests/access/routes.py.

The SLA dashboard is for platform admins: every route needs `sla.view` (admins), for reading the
settings, items and report as for changing the settings and closing days; everyone else gets 403.

The objects (tests/access/test_matrix.py): a closing day to delete. Every case is rolled back, so
each persona finds it as it was.
"""

from __future__ import annotations

from tests.access.routes import Route, api

SLA_API_ROUTES: dict[str, Route] = {
    "api/v1/sla/settings": api(
        "sla.view", "/api/v1/sla/settings", {"GET": 200, "PATCH": 200}, bodies={"PATCH": {"review_days": 2.5}},
    ),
    "api/v1/sla/closing-days": api(
        "sla.view", "/api/v1/sla/closing-days", {"GET": 200, "POST": 201},
        bodies={"POST": {"date": "2027-12-31", "name": "Matrix"}},
    ),
    "api/v1/sla/closing-days/<int:pk>": api(
        "sla.view", lambda objs: f"/api/v1/sla/closing-days/{objs['closing_day'].pk}", {"DELETE": 204},
    ),
    "api/v1/sla/items": api("sla.view", "/api/v1/sla/items"),
    "api/v1/sla/report": api("sla.view", "/api/v1/sla/report"),
}
