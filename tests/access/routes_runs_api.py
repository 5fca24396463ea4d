"""Access policy of the API of production runs (issue 7): entries as in tests/access/routes.py.

Everyone with a role reads schedules and runs (run.view); platform admins change schedules
(schedule.manage) and start, retry and cancel runs (run.trigger). Incidents are read by analysts,
reviewers and admins (incident.view; viewers: 403) and handled by admins (incident.manage).

The objects (tests/access/test_matrix.py): the default hourly schedule; a finished run whose model
failed, so a retry plans it again from main (202) while cancelling it is a 409; an open incident.
Every case is rolled back, so each persona finds them as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models_service.access import POLICY
from tests.access.routes import LOGGED_IN, ROLES_OF, Route, api


def _denied(readable: str, write: str, *methods: str) -> dict[tuple[str, str], int]:
    """403 for the `methods` of the personas whose roles allow `readable` but not `write`."""

    def may(persona: str, action: str) -> bool:
        return bool(ROLES_OF[persona] & POLICY[action])

    return {(p, m): 403 for p in LOGGED_IN for m in methods if may(p, readable) and not may(p, write)}


def _of(key: str, prefix: str, suffix: str = "") -> Callable[[dict[str, Any]], str]:
    return lambda objs: f"/api/v1/{prefix}/{objs[key].pk}{suffix}"


RUN_API_ROUTES: dict[str, Route] = {
    "api/v1/schedules": api(
        "run.view",
        "/api/v1/schedules",
        {"GET": 200, "POST": 201},
        bodies={"POST": {"name": "Matrix", "cron": "0 6 * * *"}},
        only=_denied("run.view", "schedule.manage", "POST"),
    ),
    "api/v1/schedules/<int:pk>": api(
        "run.view",
        _of("schedule", "schedules"),
        {"GET": 200, "PATCH": 200, "DELETE": 204},
        bodies={"PATCH": {"cron": "30 * * * *"}},
        only=_denied("run.view", "schedule.manage", "PATCH", "DELETE"),
    ),
    **{
        f"api/v1/schedules/<int:pk>/{verb}": api("schedule.manage", _of("schedule", "schedules", f"/{verb}"),
                                                 {"POST": 200})
        for verb in ("pause", "resume")
    },
    # Run now: 202 with the run (main is empty here, so it fails to plan, and says so).
    "api/v1/schedules/<int:pk>/run": api("run.trigger", _of("schedule", "schedules", "/run"), {"POST": 202}),
    "api/v1/runs": api(
        "run.view",
        "/api/v1/runs",
        {"GET": 200, "POST": 202},
        bodies={"POST": {"select": "orders"}},
        only=_denied("run.view", "run.trigger", "POST"),
    ),
    "api/v1/runs/next": api("run.view", "/api/v1/runs/next"),
    "api/v1/runs/<int:pk>": api("run.view", _of("run", "runs")),
    "api/v1/runs/<int:pk>/retry": api("run.trigger", _of("run", "runs", "/retry"), {"POST": 202}),
    # The run has finished: there is nothing to cancel.
    "api/v1/runs/<int:pk>/cancel": api("run.trigger", _of("run", "runs", "/cancel"), {"POST": 409}),
    "api/v1/incidents": api("incident.view", "/api/v1/incidents"),
    "api/v1/incidents/<int:pk>": api("incident.view", _of("incident", "incidents")),
    "api/v1/incidents/<int:pk>/acknowledge": api(
        "incident.manage", _of("incident", "incidents", "/acknowledge"), {"POST": 200},
        bodies={"POST": {"note": "matrix"}},
    ),
    "api/v1/incidents/<int:pk>/assign": api(
        "incident.manage", _of("incident", "incidents", "/assign"), {"POST": 200},
        bodies={"POST": {"assignee": "admin"}},
    ),
    "api/v1/incidents/<int:pk>/resolve": api(
        "incident.manage", _of("incident", "incidents", "/resolve"), {"POST": 200},
        bodies={"POST": {"resolution": "matrix"}},
    ),
}
