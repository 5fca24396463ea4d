"""Template context every page needs."""

from typing import Any

from django.http import HttpRequest

from models_service.access import roles_of
from portal import nav


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "nav_items": nav.items_for(user, request.path),
        "user_roles": sorted(roles_of(user), key=lambda role: role.label),
    }
