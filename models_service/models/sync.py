"""Keeping the remote in step: refs waiting to be pushed (an outbox) and the last fetch's outcome."""

from __future__ import annotations

from django.db import models


class PushOutbox(models.Model):
    """A ref to push to DMAAS_REPO_REMOTE. Written after every write; a failed push stays here and the
    periodic `sync_remote` task retries it, so a remote outage never loses or blocks a save."""

    ref = models.CharField(max_length=120, unique=True)
    sha = models.CharField(max_length=40)  # the commit to push (the latest write wins)
    pushed_sha = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["updated_at"]

    def __str__(self) -> str:
        return f"push {self.ref} {self.sha[:12]}"

    @property
    def pending(self) -> bool:
        return self.sha != self.pushed_sha


class RemoteSync(models.Model):
    """One row: when the remote was last fetched, what main was there, and the last problem in plain words."""

    remote = models.CharField(max_length=500)
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_remote_sha = models.CharField(max_length=40, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sync with {self.remote}"
