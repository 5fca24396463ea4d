"""The audit log: an append-only record of who did what, to which object, at which commit, from where."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AuditSource(models.TextChoices):
    PAGE = "page", "page"
    API = "api", "API"
    WORKER = "worker", "worker"
    POLICY = "policy", "policy"
    CLI = "cli", "command line"


class AuditEntry(models.Model):
    """One action. Never updated or deleted through the product (save refuses, delete raises)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)  # kept when the user is gone
    action = models.CharField(max_length=64, db_index=True)  # e.g. role.change, token.create, change.save
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=128, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="ms_audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit entries are append-only")
