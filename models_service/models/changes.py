"""Change requests: a branch `changes/<id>-<slug>` of the data-models repository, and its review state."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ChangeState(models.TextChoices):
    """draft → submitted → changes_requested ⇄ submitted → approved → merged; any open state → abandoned.

    withdraw takes a submitted, changes-requested or approved change back to draft. A save on an
    approved change sends it back to submitted: an approval holds for the commit it was given on.
    """

    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    MERGED = "merged", "Merged"
    ABANDONED = "abandoned", "Abandoned"


OPEN_STATES = (ChangeState.DRAFT, ChangeState.SUBMITTED, ChangeState.CHANGES_REQUESTED, ChangeState.APPROVED)


class ChangeRequest(models.Model):
    """One change request. Git is the source of truth for its files; `head_sha` follows the branch's tip
    (written while the branch's lock is held, so it moves in commit order)."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests")
    state = models.CharField(max_length=20, choices=ChangeState.choices, default=ChangeState.DRAFT, db_index=True)
    branch = models.CharField(max_length=120, unique=True, null=True, blank=True)  # refs/heads/changes/<id>-<slug>
    base_sha = models.CharField(max_length=40, blank=True)  # main when the change was cut or last updated
    head_sha = models.CharField(max_length=40, blank=True)  # the branch's tip
    approved_sha = models.CharField(max_length=40, blank=True)  # the head an approval was given on
    merged_sha = models.CharField(max_length=40, blank=True)  # the merge commit on main
    needs_update = models.BooleanField(default=False)  # main moved on since base_sha, or the merge conflicts
    update_reason = models.TextField(blank=True)  # plain words: why, and what conflicts
    submitted_at = models.DateTimeField(null=True, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["author", "state"], name="ms_change_author_state_idx"),
            models.Index(fields=["state", "submitted_at"], name="ms_change_state_sub_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def branch_name(self) -> str:
        """changes/<id>-<slug>, as engineers see it on the remote."""
        return (self.branch or "").removeprefix("refs/heads/")

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES
