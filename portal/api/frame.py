"""The parts every API view shares: pagination, throttling, permission from the policy table."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from models_service.access import POLICY, can, denied_message
from portal.models import ApiToken


class Pagination(PageNumberPagination):
    """`?page=2&page_size=100`; answers `{count, next, previous, results}`."""

    page_size_query_param = "page_size"
    max_page_size = 200


class ClientRateThrottle(SimpleRateThrottle):
    """Requests per token (each token has its own budget) or, for session calls, per user."""

    scope = "client"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # AnonRateThrottle counts those
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        else:
            ident = f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def allowed(action: str) -> type[BasePermission]:
    """A permission class for `action` of models_service.access.POLICY (object rules stay in services)."""
    if action not in POLICY:
        raise KeyError(f"no policy for action {action!r}")

    class Allowed(BasePermission):
        message = denied_message(action)

        def has_permission(self, request: Any, view: Any) -> bool:
            return can(request.user, action)

    Allowed.__name__ = Allowed.__qualname__ = f"Allowed_{action.replace('.', '_')}"
    return Allowed
