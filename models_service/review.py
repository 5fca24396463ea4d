"""Reviewing change requests: approve, request changes, comment. Pages, API and the policy call these.

Rules, checked here so that every caller agrees:
- Nobody reviews their own change (access.can's object rule for change.review).
- An approval is bound to the commit it saw: `sha` must be the change's head now, and a later save
  sends the change back to "submitted" (changes._follow_branch), so the approval no longer holds.
- The auto-approval policy approves through `approve_by_policy`, recorded with the rule and figures.
Each verdict moves the state by compare-and-set (changes._move) and lands in the audit log.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from . import access, audit
from .changes import S, _move, get_change
from .errors import InvalidInput, InvalidState, NotFound
from .models import ChangeRequest, Comment, Review, Verdict
from .repo import get_store

MAX_COMMENT = 10_000
REVIEWABLE = (S.SUBMITTED,)


def _reviewable(user: Any, change: ChangeRequest | int) -> ChangeRequest:
    change = get_change(user, change.pk if isinstance(change, ChangeRequest) else change)
    access.require(user, "change.review")
    if not access.can(user, "change.review", change):
        raise PermissionDenied(access.denied_message("change.review", change))
    return change


def _head(change: ChangeRequest) -> str:
    return get_store().tip(change.branch) or change.head_sha


def _bound(change: ChangeRequest, sha: str | None) -> str:
    head = _head(change)
    if sha and sha != head:
        raise InvalidState("A newer version of this change was saved after the one you reviewed; "
                           "look at the latest version and review again.")
    return head


def _text(body: Any, *, required: bool) -> str:
    text = str(body or "").strip()
    if required and not text:
        raise InvalidInput("Say what should change, so the author knows what to do.", field="body")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"A comment has at most {MAX_COMMENT:,} characters.", field="body")
    return text


def approve_change(user: Any, change: ChangeRequest | int, sha: str | None = None, body: str = "", *,
                   source: str = "page") -> ChangeRequest:
    """A reviewer approves the change at its head (`sha`, when given, must still be the head)."""
    change = _reviewable(user, change)
    if change.state not in REVIEWABLE:
        raise InvalidState(f"This change is {change.get_state_display().lower()}; only a change submitted for "
                           "review can be approved.")
    head = _bound(change, sha)
    text = _text(body, required=False)
    change = _move(user, change, REVIEWABLE, S.APPROVED, "approved", source=source, action="change.approve",
                   details={"reviewer": user.get_username()}, approved_sha=head)
    Review.objects.create(change=change, reviewer=user, verdict=Verdict.APPROVED, sha=head, body=text)
    if text:
        Comment.objects.create(change=change, author=user, body=text, sha=head)
    return change


def approve_by_policy(change: ChangeRequest, sha: str, rule: str, figures: dict[str, Any]) -> ChangeRequest | None:
    """The auto-approval policy approves `change` at `sha`; None when the change moved on meanwhile
    (a new save, withdrawn, approved by a person): then nothing is recorded."""
    change = ChangeRequest.objects.get(pk=change.pk)
    if change.state not in REVIEWABLE or _head(change) != sha:
        return None
    try:
        change = _move(None, change, REVIEWABLE, S.APPROVED, "approved", source="policy", action="change.approve",
                       details={"rule": rule, "figures": figures}, approved_sha=sha)
    except InvalidState:
        return None
    Review.objects.create(change=change, reviewer=None, verdict=Verdict.APPROVED, sha=sha, rule=rule, figures=figures)
    return change


def request_changes(user: Any, change: ChangeRequest | int, body: str, sha: str | None = None, *,
                    model: str = "", line: int | None = None, source: str = "page") -> ChangeRequest:
    """Send the change back to its author with what to change (the editor shows it)."""
    change = _reviewable(user, change)
    if change.state not in (S.SUBMITTED, S.APPROVED):
        raise InvalidState(f"This change is {change.get_state_display().lower()}; changes can be requested only "
                           "while it is under review.")
    text = _text(body, required=True)
    head = _bound(change, sha)
    change = _move(user, change, (S.SUBMITTED, S.APPROVED), S.CHANGES_REQUESTED, "sent back", source=source,
                   action="change.request_changes", details={"reviewer": user.get_username()}, approved_sha="")
    Review.objects.create(change=change, reviewer=user, verdict=Verdict.CHANGES_REQUESTED, sha=head, body=text)
    Comment.objects.create(change=change, author=user, body=text, sha=head, model=model, line=line)
    return change


def add_comment(user: Any, change: ChangeRequest | int, body: str, *, model: str = "", line: int | None = None,
                reply_to: int | None = None, source: str = "page") -> Comment:
    """A comment on the change, or on one model (and line) of it, or a reply in a thread."""
    change = get_change(user, change.pk if isinstance(change, ChangeRequest) else change)
    access.require(user, "change.comment")
    text = _text(body, required=True)
    parent = None
    if reply_to is not None:
        parent = Comment.objects.filter(pk=reply_to, change=change).first()
        if parent is None:
            raise NotFound(f"There is no comment {reply_to} on this change.")
        model, line = parent.model, parent.line
    if line is not None and (not model or line < 1):
        raise InvalidInput("A comment on a line names the model and a line from 1.", field="line")
    comment = Comment.objects.create(change=change, author=user, body=text, model=model or "", line=line,
                                     sha=_head(change), reply_to=parent)
    audit.record(user, "change.comment", change, source=source, sha=comment.sha,
                 details={"comment": comment.pk, "model": model, "line": line})
    return comment


def comments_of(change: ChangeRequest) -> list[Comment]:
    return list(Comment.objects.filter(change=change).select_related("author"))


def reviews_of(change: ChangeRequest) -> list[Review]:
    return list(Review.objects.filter(change=change).select_related("reviewer"))


def latest_request(change: ChangeRequest) -> Review | None:
    """The last "changes requested" verdict while the change waits on its author (the editor shows it)."""
    if change.state != S.CHANGES_REQUESTED:
        return None
    return Review.objects.filter(change=change, verdict=Verdict.CHANGES_REQUESTED).select_related(
        "reviewer").order_by("-created_at", "-id").first()
