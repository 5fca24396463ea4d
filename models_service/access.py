"""Who may do what: the roles and the policy table, checked here so that pages and the API agree.

Roles are Django groups named after `Role` values; a user may hold several. A superuser is an admin.
Object rules (nobody approves their own change; drafts are private) are in the `can_*` functions.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models


class Role(models.TextChoices):
    ANALYST = "analyst", "Analyst"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Platform admin"
    VIEWER = "viewer", "Viewer"
    LEGAL = "legal", "Legal"
    SECURITY = "security", "Security"


EVERYONE = frozenset(Role)
A, R, ADM, V, L, S = Role.ANALYST, Role.REVIEWER, Role.ADMIN, Role.VIEWER, Role.LEGAL, Role.SECURITY

# action -> the roles that may do it. A new action must be added here; `can` refuses unknown actions.
POLICY: dict[str, frozenset[Role]] = {
    "catalog.view": EVERYONE,
    "run.view": EVERYONE,
    "model.edit": frozenset({A, ADM}),  # open a change, save, rename, delete, submit, withdraw
    "change.view_all": frozenset({R, ADM}),  # see every submitted change, not only one's own
    "change.review": frozenset({R, ADM}),  # approve, request changes (never one's own change)
    "change.comment": frozenset({A, R, ADM}),
    "incident.view": frozenset({A, R, ADM}),
    "incident.manage": frozenset({ADM}),  # acknowledge, resolve
    "schedule.manage": frozenset({ADM}),
    "anomaly.manage": frozenset({ADM}),  # tune anomaly detection per model
    "policy.manage": frozenset({ADM}),  # the auto-approval policy's rules
    "run.trigger": frozenset({ADM}),
    "sla.view": frozenset({ADM}),
    "audit.view": frozenset({ADM, S}),
    "user.manage": frozenset({ADM}),  # set roles, deactivate, open the Django admin
    "token.manage_own": EVERYONE,  # API tokens for oneself; an account with no role gets none
    "token.manage_any": frozenset({ADM}),  # see, create and revoke anyone's API tokens
    "pii.view": frozenset({L, ADM}),  # see unmasked PII columns
    "pii.classify": frozenset({L}),  # confirm or reject PII tags
}


def roles_of(user: Any) -> frozenset[Role]:
    """The user's roles, read once per user object."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_dmaas_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(r for r in Role if r.value in names)
        if user.is_superuser:
            cached = cached | {Role.ADMIN}
        user._dmaas_roles = cached
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))


def can(user: Any, action: str, obj: Any = None) -> bool:
    if action not in POLICY:
        raise KeyError(f"no policy for action {action!r}: add it to models_service.access.POLICY")
    if not roles_of(user) & POLICY[action]:
        return False
    if obj is not None and action == "change.review":
        return getattr(obj, "author_id", None) != user.pk
    if obj is not None and action == "model.edit":
        return getattr(obj, "author_id", None) == user.pk or has_role(user, Role.ADMIN)
    return True


def permissions_of(user: Any) -> list[str]:
    """Every action the user's roles allow (object rules aside), sorted: for /api/v1/me and pages."""
    roles = roles_of(user)
    return sorted(action for action, allowed in POLICY.items() if roles & allowed)


def require(user: Any, action: str, obj: Any = None) -> None:
    """Raise PermissionDenied (403 on pages and in the API) unless the user may do `action`."""
    if not can(user, action, obj):
        raise PermissionDenied(denied_message(action, obj))


def denied_message(action: str, obj: Any = None) -> str:
    if action == "change.review" and obj is not None:
        return "You cannot review your own change: another reviewer has to approve it."
    roles = ", ".join(sorted(r.label.lower() for r in POLICY.get(action, ())))
    return f"This needs one of these roles: {roles}. Ask a platform admin if you need it."
