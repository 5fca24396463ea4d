"""API tokens: create, authenticate, list and revoke. Pages, the API and the CLI all call these.

A token reads `dmaas_<prefix>_<secret>`: 8 hex characters of prefix (shown in lists) and 43 of
URL-safe secret (256 random bits). The raw token is returned once, by `create_token`, and never
stored, logged or put in the audit log; the database keeps its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from models_service import audit
from models_service.access import can, require, roles_of
from portal.models import ApiToken, RevokeReason

TOKEN_RE = re.compile(r"^dmaas_(?P<prefix>[0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
# last_used_at is written at most this often per token, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenInvalid(Exception):
    """The presented token does not authenticate; the message says why, for the token's holder."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown to the user once, then gone


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def roles_fingerprint(user: Any) -> str:
    return ",".join(sorted(role.value for role in roles_of(user)))


def create_token(actor: Any, owner: Any, *, name: str, days: int | None = None, source: str) -> IssuedToken:
    """Issue a token for `owner`. Anyone with a role may make their own; admins may make anyone's."""
    require(actor, "token.manage_own" if actor == owner else "token.manage_any")
    if not owner.is_active:
        raise ValidationError("This user is deactivated and cannot get a token.", code="inactive")
    if not roles_of(owner):
        raise ValidationError("This user has no role, so a token would allow nothing.", code="no_role")
    name = (name or "").strip() or "API token"
    days = settings.DMAAS_API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= settings.DMAAS_API_TOKEN_MAX_DAYS:
        raise ValidationError(
            f"A token lives between 1 and {settings.DMAAS_API_TOKEN_MAX_DAYS} days.", code="days"
        )
    now = timezone.now()
    for _attempt in range(3):  # a clash of 32-bit prefixes is rare; try a fresh one
        prefix = secrets.token_hex(4)
        raw = f"dmaas_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=owner,
                    name=name[:100],
                    prefix=prefix,
                    digest=digest(raw),
                    roles=roles_fingerprint(owner),
                    created_at=now,
                    created_by=actor if getattr(actor, "is_authenticated", False) else None,
                    expires_at=now + timedelta(days=days),
                )
                audit.record(actor, "token.create", token, source=source, details=_details(token))
            return IssuedToken(token=token, raw=raw)
        except IntegrityError:
            continue
    raise RuntimeError("could not find a free token prefix")  # pragma: no cover


def authenticate(raw: str) -> ApiToken:
    """The token behind `raw`, with its user loaded, or TokenInvalid saying why."""
    if not TOKEN_RE.match(raw):
        raise TokenInvalid("Invalid token.")
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    if token is None:
        raise TokenInvalid("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenInvalid(f"This token was revoked: {token.get_revoked_reason_display()}.")
    if token.expires_at <= now:
        raise TokenInvalid("This token has expired. Create a new one on your profile page.")
    user = token.user
    if not user.is_active:
        _revoke(None, token, RevokeReason.DEACTIVATED, source="policy")
        raise TokenInvalid("This token was revoked: the user was deactivated.")
    if token.roles != roles_fingerprint(user):
        # The roles changed by a path that did not revoke (e.g. the shell): revoke now.
        _revoke(None, token, RevokeReason.ROLES, source="policy")
        raise TokenInvalid("This token was revoked: the user's roles changed.")
    # Written at most once a LAST_USED_PRECISION: the row just read says whether it is due, so most
    # requests send no UPDATE at all; the filter keeps concurrent requests from writing it twice.
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_PRECISION:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        if ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
            token.last_used_at = now
    return token


def tokens_visible_to(actor: Any) -> QuerySet[ApiToken]:
    """The tokens `actor` may see and revoke: their own; a platform admin's, everyone's."""
    tokens = ApiToken.objects.select_related("user")
    if can(actor, "token.manage_any"):
        return tokens
    return tokens.filter(user=actor)


def revoke_token(actor: Any, token: ApiToken, *, source: str) -> bool:
    """Revoke one token; False if it was already revoked. Owners revoke their own, admins anyone's."""
    own = token.user_id == getattr(actor, "pk", None)
    if not (own and can(actor, "token.manage_own")) and not can(actor, "token.manage_any"):
        raise PermissionDenied("You can revoke only your own tokens.")
    return _revoke(actor, token, RevokeReason.OWNER if own else RevokeReason.ADMIN, source=source)


def revoke_all(actor: Any, user: Any, reason: RevokeReason, *, source: str) -> int:
    """Revoke every live token of `user` (deactivation, role change); one audit entry per token."""
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    return sum(_revoke(actor, token, reason, source=source) for token in live)


def _revoke(actor: Any, token: ApiToken, reason: RevokeReason, *, source: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        # Compare-and-set: two revocations at once write one audit entry, not two.
        if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=reason
        ):
            return False
        token.revoked_at, token.revoked_reason = now, reason
        audit.record(
            actor, "token.revoke", token, source=source, details=_details(token) | {"reason": reason.value}
        )
    return True


def _details(token: ApiToken) -> dict[str, Any]:
    return {
        "owner": token.user.get_username(),
        "prefix": token.prefix,
        "name": token.name,
        "expires_at": token.expires_at.isoformat(),
    }
