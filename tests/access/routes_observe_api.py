"""Access policy of the data watch's API (issue 9): entries as in tests/access/routes.py.

Anomalies, schema changes and a model's sensitivity are read by analysts, reviewers and admins
(incident.view; viewers: 403); only platform admins tune the sensitivity (anomaly.manage). A model's
measurements are catalog information (catalog.view: every role). The model is objs["model"], on main.
"""

from __future__ import annotations

from models_service.access import POLICY
from tests.access.routes import LOGGED_IN, ROLES_OF, Route, api


def _denied(readable: str, write: str, *methods: str) -> dict[tuple[str, str], int]:
    """403 for the `methods` of the personas whose roles allow `readable` but not `write`."""

    def may(persona: str, action: str) -> bool:
        return bool(ROLES_OF[persona] & POLICY[action])

    return {(p, m): 403 for p in LOGGED_IN for m in methods if may(p, readable) and not may(p, write)}


OBSERVE_API_ROUTES: dict[str, Route] = {
    "api/v1/anomalies": api("incident.view", "/api/v1/anomalies"),
    "api/v1/schema-changes": api("incident.view", "/api/v1/schema-changes"),
    "api/v1/models/<str:name>/anomaly-settings": api(
        "incident.view",
        lambda objs: f"/api/v1/models/{objs['model']}/anomaly-settings",
        {"GET": 200, "PUT": 200},
        bodies={"PUT": {"warn_score": 5}},
        only=_denied("incident.view", "anomaly.manage", "PUT"),
    ),
    "api/v1/models/<str:name>/measurements": api(
        "catalog.view", lambda objs: f"/api/v1/models/{objs['model']}/measurements"
    ),
}
