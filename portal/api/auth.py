"""API authentication by token: `Authorization: Bearer <token>` (or `Token <token>`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from portal import tokens

KEYWORDS = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    """Looks the token up by its SHA-256; see portal/tokens.py for what makes one valid."""

    def authenticate(self, request: Any):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: let session authentication try
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: send 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
            token = tokens.authenticate(raw)
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        except tokens.TokenInvalid as exc:
            raise AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        # Present on every 401, so clients learn how to authenticate.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.auth.ApiTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "dmaas_<prefix>_<secret>",
            "description": "An API token from the profile page or `manage.py dmaas_user NAME --token`.",
        }
