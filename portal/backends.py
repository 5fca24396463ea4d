"""Authentication backends: the login guard, and Django-admin permissions that follow the roles."""

from __future__ import annotations

from typing import Any

from axes.exceptions import AxesBackendPermissionDenied

from models_service.access import Role, has_role
from portal import login_guard

# The audit log is append-only: no role may add, change or delete entries through the admin.
READ_ONLY_PERMISSIONS = frozenset(f"models_service.{verb}_auditentry" for verb in ("add", "change", "delete"))


class LoginGuardBackend:
    """Reserves a login attempt before ModelBackend checks the password (see portal/login_guard.py).

    Sits after axes' backend, which refuses a username that is already locked out, and before
    ModelBackend. It never logs anyone in: it returns None, or refuses as axes does, so the
    AxesMiddleware answers with the same lockout page.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        if request is None or not username:
            return None
        if login_guard.reserve_attempt(username):
            return None
        request.axes_locked_out = True
        request.axes_credentials = {"username": username}
        raise AxesBackendPermissionDenied("every login attempt for this username is used up")


class RolePermissionBackend:
    """Platform admins may use every Django admin page (bar editing the audit log).

    Permissions come from the role (a group) rather than from Django's per-model permission rows,
    so the policy table in models_service/access.py stays the one place that says who may do what.
    """

    # No get_user: Django keeps the backend that logged a user in with their session, and these
    # two never do (test clients' force_login, too, picks the first backend that has get_user).
    def authenticate(self, request: Any, **kwargs: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return perm not in READ_ONLY_PERMISSIONS and has_role(user_obj, Role.ADMIN)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return has_role(user_obj, Role.ADMIN)
