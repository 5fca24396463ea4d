"""Reviews of change requests: verdicts (approve, request changes) and comment threads."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Verdict(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class Review(models.Model):
    """One verdict on a change, bound to the commit it was given on (`sha`). A reviewer, or the
    auto-approval policy (`reviewer` null): then `rule` says which rule fired and `figures` what met it."""

    change = models.ForeignKey("models_service.ChangeRequest", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="reviews")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    sha = models.CharField(max_length=40)
    body = models.TextField(blank=True)
    rule = models.CharField(max_length=200, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        who = self.reviewer.get_username() if self.reviewer else "policy"
        return f"{self.get_verdict_display()} by {who} on #{self.change_id}"

    @property
    def by_policy(self) -> bool:
        return self.reviewer_id is None


class Comment(models.Model):
    """A comment on a change, optionally on one model and line of it; `reply_to` makes threads."""

    change = models.ForeignKey("models_service.ChangeRequest", on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments")
    body = models.TextField()
    model = models.CharField(max_length=200, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    sha = models.CharField(max_length=40, blank=True)
    reply_to = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on #{self.change_id}"
