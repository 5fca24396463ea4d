"""People: users, their roles and whether they may log in. Pages, the API and the CLI call these.

Roles are Django groups named after `models_service.access.Role`. Every change of roles or of
activation goes through here, so it is audited once (with its source: page, api or cli) and the
user's API tokens are revoked once. Being a platform admin also makes a user `is_staff`, so the
Django admin opens for them; their permissions there come from the role (portal/backends.py).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from models_service import audit
from models_service.access import Role, require
from portal import tokens
from portal.models import RevokeReason


def parse_roles(values: Iterable[str]) -> set[Role]:
    roles = set()
    for value in values:
        try:
            roles.add(Role(value))
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise ValidationError(f"{value!r} is not a role; the roles are: {known}.", code="role") from None
    return roles


def group_roles(user: Any) -> set[Role]:
    """The roles held through groups (roles_of adds admin for superusers; this does not)."""
    names = set(user.groups.values_list("name", flat=True))
    return {role for role in Role if role.value in names}


def users_visible_to(actor: Any) -> QuerySet:
    _require_manager(actor)
    return get_user_model().objects.prefetch_related("groups").order_by("username")


def set_roles(actor: Any, user: Any, roles: Iterable[Role | str], *, source: str) -> bool:
    """Give `user` exactly `roles`. Returns False when nothing changed. `actor` None is the system."""
    _require_manager(actor)
    new = parse_roles(roles)
    old = group_roles(user)
    if new == old:
        return False
    if _is_self(actor, user) and Role.ADMIN in old and Role.ADMIN not in new:
        raise PermissionDenied("You cannot remove your own admin role: ask another platform admin.")
    with transaction.atomic():
        groups = [Group.objects.get_or_create(name=role.value)[0] for role in sorted(new)]
        user.groups.set(groups)
        roles_changed(actor, user, old, new, source=source)
    return True


def roles_changed(actor: Any, user: Any, old: set[Role], new: set[Role], *, source: str) -> None:
    """What follows a change of roles, by set_roles or by the Django admin's user form."""
    user.__dict__.pop("_dmaas_roles", None)
    staff = Role.ADMIN in new or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    audit.record(
        actor,
        "role.change",
        user,
        source=source,
        details={"before": sorted(r.value for r in old), "after": sorted(r.value for r in new)} | _who(actor),
    )
    tokens.revoke_all(actor, user, RevokeReason.ROLES, source=source)


def set_active(actor: Any, user: Any, active: bool, *, source: str) -> bool:
    """Deactivate (or reactivate) a user; a deactivated user cannot log in and loses every token."""
    _require_manager(actor)
    if user.is_active == active:
        return False
    if _is_self(actor, user) and not active:
        raise PermissionDenied("You cannot deactivate yourself: ask another platform admin.")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        activation_changed(actor, user, source=source)
    return True


def activation_changed(actor: Any, user: Any, *, source: str) -> None:
    """What follows (de)activation, by set_active or by the Django admin's user form."""
    action = "user.reactivate" if user.is_active else "user.deactivate"
    audit.record(actor, action, user, source=source, details=_who(actor))
    if not user.is_active:
        tokens.revoke_all(actor, user, RevokeReason.DEACTIVATED, source=source)


def update_user(
    actor: Any, user: Any, *, roles: Iterable[str] | None = None, active: bool | None = None, source: str
) -> None:
    """Roles and activation in one transaction (the API's PATCH); None leaves a part as it is."""
    with transaction.atomic():
        if roles is not None:
            set_roles(actor, user, roles, source=source)
        if active is not None:
            set_active(actor, user, active, source=source)


def ensure_user(
    username: str,
    *,
    roles: Iterable[str] | None = None,
    email: str | None = None,
    password: str | None = None,
    source: str,
) -> tuple[Any, bool]:
    """Create or update a user as the system (the operator's command line). Returns (user, created).

    A new user without a password gets an unusable one: they cannot log in until one is set.
    """
    user_model = get_user_model()
    new_roles = parse_roles(roles) if roles is not None else None
    with transaction.atomic():
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if created:
            if not new_roles:
                raise ValidationError("A new user needs a role.", code="role")
            user = user_model(username=username, email=email or "")
            user.full_clean(exclude=["password"])
        elif email is not None and user.email != email:
            user.email = email
        if password is not None:
            validate_password(password, user)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.save()
        if created:
            audit.record(None, "user.create", user, source=source, details=_who(None))
        if new_roles is not None:
            set_roles(None, user, new_roles, source=source)
    return user, created


def _require_manager(actor: Any) -> None:
    # None is the system itself (migrations, the operator's command line), not a visitor.
    if actor is not None:
        require(actor, "user.manage")


def _is_self(actor: Any, user: Any) -> bool:
    return actor is not None and actor.pk == user.pk


def _who(actor: Any) -> dict[str, str]:
    """For changes made by the system, the operating-system account that ran the command."""
    if actor is not None:
        return {}
    try:
        return {"os_user": getpass.getuser()}
    except (KeyError, OSError):  # no passwd entry (some containers)
        return {}
