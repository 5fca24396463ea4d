"""Access policy of the review pages (issue 6): entries as in tests/access/routes.py.

They are called on objs["submitted"], a change of the analyst's that is under review: reviewers and
admins see it, its author too; a viewer may open review pages (catalog.view) but never sees another's
change (404). Every form answers with a redirect to the review page, with a message saying what
happened (an admin approving: approved; the author is refused by the role check first).
"""

from __future__ import annotations

from typing import Any

from tests.access.routes import Route, page


def _review(suffix: str = ""):
    return lambda objs: f"/review/{objs['submitted'].pk}/{suffix}"


POLICY_BODY: dict[str, Any] = {
    "enabled": "on",
    "max_build_minutes": "15",
    "require_build_passed": "on",
    "require_tests_passed": "on",
    "require_fast_build": "on",
    "require_no_breaking_change": "on",
    "require_no_validation_error": "on",
    "merge_on_approval": "on",
}

REVIEW_PAGE_ROUTES: dict[str, Route] = {
    "review/": page("change.review", "/review/"),
    # Admins only; a valid form saves and goes back to the page.
    "review/policy/": page(
        "policy.manage", "/review/policy/", {"GET": 200, "POST": 302}, bodies={"POST": POLICY_BODY}
    ),
    "review/<int:pk>/": page("catalog.view", _review(), hide=("viewer",)),
    "review/<int:pk>/approve/": page("change.review", _review("approve/"), {"POST": 302}),
    "review/<int:pk>/request-changes/": page(
        "change.review", _review("request-changes/"), {"POST": 302}, bodies={"POST": {"body": "matrix"}}
    ),
    # Authors, reviewers and admins comment; a viewer has no part in a review (403).
    "review/<int:pk>/comment/": page(
        "change.comment", _review("comment/"), {"POST": 302}, bodies={"POST": {"body": "matrix"}}
    ),
    # Building again: the same roles ask; runner.ci.retry_build allows the author and reviewers.
    "review/<int:pk>/rebuild/": page("change.comment", _review("rebuild/"), {"POST": 302}),
}
