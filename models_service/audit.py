"""Writing to the audit log. Every state change of note calls `record` once, in its service function."""

from __future__ import annotations

from typing import Any

from .models.audit import AuditEntry, AuditSource


def record(actor: Any, action: str, obj: Any = None, *, source: str, sha: str = "",
           details: dict[str, Any] | None = None, object_type: str = "", object_id: str = "",
           object_repr: str = "") -> AuditEntry:
    """Append one entry. `actor` is a user or None (the system); `obj` any model instance or None."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        sha=sha,
        source=AuditSource(source),
        details=details or {},
    )


def entries(
    *,
    action: str = "",
    actor: str = "",
    source: str = "",
    object_type: str = "",
    object_id: str = "",
    sha: str = "",
    since: Any = None,
    until: Any = None,
):
    """Entries matching every filter given, newest first. `action` ending in "." is a family
    ("token." matches token.create and token.revoke); `sha` matches a prefix; since/until are
    aware datetimes (since inclusive, until exclusive)."""
    found = AuditEntry.objects.all()
    if action:
        found = found.filter(action__startswith=action) if action.endswith(".") else found.filter(action=action)
    if actor:
        found = found.filter(actor_name=actor)
    if source:
        found = found.filter(source=source)
    if object_type:
        found = found.filter(object_type=object_type)
    if object_id:
        found = found.filter(object_id=object_id)
    if sha:
        found = found.filter(sha__startswith=sha.lower())
    if since is not None:
        found = found.filter(at__gte=since)
    if until is not None:
        found = found.filter(at__lt=until)
    return found
