"""The people tests act as: one persona per role, plus an outsider (logged in, no role).

Users are given roles through the same service as production (portal.accounts.set_roles), so a
platform admin is also `is_staff`, as in production.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from portal import accounts

# persona -> roles. "anonymous" is not a user; the access matrix adds it.
PERSONAS: dict[str, tuple[str, ...]] = {
    "analyst": ("analyst",),
    "reviewer": ("reviewer",),
    "admin": ("admin",),
    "viewer": ("viewer",),
    "outsider": (),
}
PASSWORD = "correct horse battery staple"


def make_user(username: str, *roles: str, password: str = PASSWORD, **fields):
    user = get_user_model().objects.create_user(
        username, password=password, email=f"{username}@example.com", **fields
    )
    if roles:
        accounts.set_roles(None, user, roles, source="cli")
        user.refresh_from_db()
    return user


def make_persona(name: str):
    return make_user(name, *PERSONAS[name])
