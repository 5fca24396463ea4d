"""The portal's own tables: API tokens and the login guard. Both are web concerns, so they live here.

Services that change them are in portal/tokens.py and portal/login_guard.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["ApiToken", "LoginGuard", "RevokeReason"]


class RevokeReason(models.TextChoices):
    OWNER = "owner", "revoked by its owner"
    ADMIN = "admin", "revoked by a platform admin"
    DEACTIVATED = "deactivated", "the user was deactivated"
    ROLES = "roles", "the user's roles changed"


class ApiToken(models.Model):
    """A bearer token for the REST API, `dmaas_<prefix>_<secret>`.

    Only the SHA-256 of the whole token is kept: a 256-bit random secret needs no slow hash (there is
    nothing to guess), and a copy of the database then holds nothing that authenticates. The prefix
    is not secret; it tells tokens apart in lists. `roles` records the owner's roles at creation:
    a token whose owner's roles differ, by whatever path they changed, no longer authenticates.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    roles = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=16, blank=True, choices=RevokeReason.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="portal_token_user_idx")]

    def __str__(self) -> str:
        return f"{self.name} (dmaas_{self.prefix}_…)"

    @property
    def display(self) -> str:
        """What lists show: enough to recognise the token, nothing that authenticates."""
        return f"dmaas_{self.prefix}_…"

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class LoginGuard(models.Model):
    """Login attempts per username within the cool-off, reserved before the password is checked."""

    username = models.CharField(max_length=150, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.username}: {self.attempts}"
