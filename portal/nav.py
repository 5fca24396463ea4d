"""The main navigation: one table, in the order of the menu.

An entry shows when a URL of its name exists and the user's roles allow its action. Features that
later issues build (the editor, the review queue, runs, ...) are listed already, under the URL name
their issue should give its page; until that page exists its link is simply absent. A new page
family adds or edits its line here; tests/portal/test_nav.py checks every action is in the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

from models_service.access import can


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str  # a name for django.urls.reverse, without arguments
    action: str  # an action of models_service.access.POLICY


NAV: tuple[NavItem, ...] = (
    NavItem("Editor", "editor", "model.edit"),
    NavItem("My changes", "my-changes", "model.edit"),
    NavItem("Review queue", "review-queue", "change.review"),
    NavItem("Runs", "runs", "run.view"),
    NavItem("Incidents", "incidents", "incident.view"),
    NavItem("Anomalies", "anomalies", "incident.view"),
    NavItem("Catalog", "catalog", "catalog.view"),
    NavItem("SLA dashboard", "sla-dashboard", "sla.view"),
    NavItem("Audit log", "audit", "audit.view"),
    NavItem("PII review", "pii", "pii.classify"),
    NavItem("Admin", "admin:index", "user.manage"),
)


def _url(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def items_for(user: Any, path: str = "") -> list[dict[str, Any]]:
    """The entries `user` may follow, each with its URL and whether it is the current page."""
    if not getattr(user, "is_authenticated", False):
        return []
    found = []
    for item in NAV:
        url = _url(item.url_name)
        if url is not None and can(user, item.action):
            current = path == url or (url != "/" and path.startswith(url))
            found.append({"label": item.label, "url": url, "current": current})
    return found
