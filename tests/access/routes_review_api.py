"""Access policy of the review API (issue 6): entries as in tests/access/routes.py.

The routes of one change are called on the analyst's change that is submitted for review
(objs["submitted"]): its author, reviewers and platform admins see it; a viewer sees only their own
changes, so it is a 404 for them. The reviewer and the admin are not its author, so their verdicts
land (200) and are rolled back after each case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models_service.access import POLICY
from tests.access.routes import LOGGED_IN, ROLES_OF, Route, api


def denied(readable: str, writes: tuple[str, ...], *methods: str) -> dict[tuple[str, str], int]:
    """Cells of a route that `readable` lets a persona call but whose `methods` need one of the
    actions in `writes`: 403 for the personas who may read but not write."""

    def may(persona: str, action: str) -> bool:
        return bool(ROLES_OF[persona] & POLICY[action])

    return {
        (p, m): 403
        for p in LOGGED_IN
        for m in methods
        if may(p, readable) and not any(may(p, action) for action in writes)
    }


def _submitted(suffix: str) -> Callable[[dict[str, Any]], str]:
    return lambda objs: f"/api/v1/changes/{objs['submitted'].pk}{suffix}"


# A submitted change is hidden from the personas who read changes but only their own.
HIDDEN = ("viewer",)

REVIEW_API_ROUTES: dict[str, Route] = {
    "api/v1/review-queue": api("change.review", "/api/v1/review-queue"),
    "api/v1/changes/<int:pk>/review": api("catalog.view", _submitted("/review"), hide=HIDDEN),
    "api/v1/changes/<int:pk>/approve": api("change.review", _submitted("/approve"), {"POST": 200}),
    "api/v1/changes/<int:pk>/request-changes": api(
        "change.review", _submitted("/request-changes"), {"POST": 200}, bodies={"POST": {"body": "matrix"}}
    ),
    # Anyone who sees the change reads its comments; writing one needs change.comment (viewers: 403).
    "api/v1/changes/<int:pk>/comments": api(
        "catalog.view",
        _submitted("/comments"),
        {"GET": 200, "POST": 201},
        bodies={"POST": {"body": "matrix"}},
        hide=HIDDEN,
        only=denied("catalog.view", ("change.comment",), "POST"),
    ),
    # Building again is for its author, reviewers and admins (202: the build is queued, never run here).
    "api/v1/changes/<int:pk>/ci-builds": api(
        "catalog.view",
        _submitted("/ci-builds"),
        {"GET": 200, "POST": 202},
        hide=HIDDEN,
        only=denied("catalog.view", ("model.edit", "change.review"), "POST"),
    ),
    "api/v1/ci-builds/<int:pk>": api(
        "catalog.view", lambda objs: f"/api/v1/ci-builds/{objs['ci_build'].pk}", hide=HIDDEN
    ),
    "api/v1/changes/<int:pk>/deployments": api("catalog.view", _submitted("/deployments"), hide=HIDDEN),
    "api/v1/deployments/<int:pk>": api(
        "catalog.view", lambda objs: f"/api/v1/deployments/{objs['deployment'].pk}", hide=HIDDEN
    ),
    # Reviewers read the auto-approval policy; only platform admins change it.
    "api/v1/review-policy": api(
        "change.review",
        "/api/v1/review-policy",
        {"GET": 200, "PATCH": 200},
        bodies={"PATCH": {"enabled": True}},
        only=denied("change.review", ("policy.manage",), "PATCH"),
    ),
}
