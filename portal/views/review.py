"""The reviewers' pages: the review queue, one change's review page, and the auto-approval policy.

Views stay thin: `@page` checks the role, one service function does the work (runner.reviews for
what a page shows; models_service.review, runner.ci and runner.policy for what a form does), and a
ServiceError becomes a message on the page, never a 500. What is left here is presentation: the
side-by-side diff (difflib), comment threads grouped by model and line, and small parsing forms.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from models_service import access, changes, review
from models_service.errors import NotFound, ServiceError
from models_service.models import ChangeRequest, ChangeState, Comment, Review, Verdict
from portal.views.changes import STATUS_WORDS
from portal.views.decorators import page
from portal.views.sla import clock_of
from runner import ci, policy, reviews
from runner.models import ReviewPolicy

SHOW_TABS = (
    ("mine", "To review"),
    ("all", "All under review"),
    ("overdue", "Overdue"),
)
EMPTY_QUEUE = {
    "mine": "Nothing waits for your review. Changes others submit appear here, soonest due first.",
    "all": "No change is under review.",
    "overdue": "No change is overdue for review.",
}
WAITS = re.compile(r"^Waits for a (?:reviewer|person)[.:]\s*")  # the page says "waits for a person: …" itself
CONTEXT_LINES = 5  # unchanged lines shown around each change in the side-by-side diff
RULES = (
    ("require_build_passed", "build_passed", "The CI build succeeded",
     "Every model the change modifies, and every model downstream of them, built without an error."),
    ("require_tests_passed", "tests_passed", "Every error-severity test passed",
     "The data tests of those models passed; tests of severity “warn” do not count."),
    ("require_fast_build", "fast_build", "The build was fast",
     "Building and testing took less than the time below: a slow change deserves a person's look."),
    ("require_no_breaking_change", "no_breaking_change", "Nothing downstream breaks",
     "No column that a downstream model reads is dropped or renamed."),
    ("require_no_validation_error", "no_validation_error", "No validation error",
     "The editor's checks (syntax, unknown models and columns, cycles) find no error in the saved SQL."),
)


# --------------------------------------------------------------------------- presentation helpers


def age_words(age: dt.timedelta | None) -> str:
    """3 d 4 h, 5 h 12 min, 12 min: how long a change has waited."""
    if age is None:
        return ""
    minutes = max(0, int(age.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def _cell(num: int | str, text: str, kind: str) -> dict[str, Any]:
    return {"num": num, "text": text, "kind": kind}


def side_by_side(before: str, after: str, context: int = CONTEXT_LINES) -> list[dict[str, Any]]:
    """Rows of a two-column diff: each row a `left` (before) and a `right` (after) cell, each with its
    line number, text and kind (ctx, del, add, empty); `gap` rows stand for unchanged lines left out.
    difflib pairs the lines; replaced lines are shown beside what replaced them."""
    if before == after:
        return []
    a, b = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    rows: list[dict[str, Any]] = []
    shown_to = 0  # how far along `a` the rows have come, to count the lines a gap leaves out
    for group in matcher.get_grouped_opcodes(context):
        first = group[0]
        if first[1] > shown_to:
            rows.append({"kind": "gap", "hidden": first[1] - shown_to})
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for k in range(i2 - i1):
                    rows.append({"kind": "ctx", "left": _cell(i1 + k + 1, a[i1 + k], "ctx"),
                                 "right": _cell(j1 + k + 1, b[j1 + k], "ctx")})
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                left = _cell(i1 + k + 1, a[i1 + k], "del") if i1 + k < i2 else _cell("", "", "empty")
                right = _cell(j1 + k + 1, b[j1 + k], "add") if j1 + k < j2 else _cell("", "", "empty")
                rows.append({"kind": "change", "left": left, "right": right})
        shown_to = group[-1][2]
    if shown_to < len(a):
        rows.append({"kind": "gap", "hidden": len(a) - shown_to})
    return rows


def threads_of(comments: list[Comment]) -> list[dict[str, Any]]:
    """Comments as threads: a first comment and its replies (a reply to a reply joins the thread)."""
    by_id = {c.pk: c for c in comments}
    threads: dict[int, dict[str, Any]] = {}
    for comment in comments:  # oldest first
        root = comment
        while root.reply_to_id is not None and root.reply_to_id in by_id:
            root = by_id[root.reply_to_id]
        if root is comment:
            threads[comment.pk] = {"root": comment, "replies": [], "model": comment.model, "line": comment.line}
        else:
            threads[root.pk]["replies"].append(comment)
    return list(threads.values())


def grouped_threads(comments: list[Comment], models: list[str]) -> dict[str, Any]:
    """General threads, threads per model of the diff (by line, then time), and threads on models the
    diff no longer shows (renamed or taken out of the change since)."""
    general, per_model, elsewhere = [], {name: [] for name in models}, []
    for thread in threads_of(comments):
        if not thread["model"]:
            general.append(thread)
        elif thread["model"] in per_model:
            per_model[thread["model"]].append(thread)
        else:
            elsewhere.append(thread)
    for threads in per_model.values():
        threads.sort(key=lambda t: (t["line"] or 0, t["root"].created_at, t["root"].pk))
    return {"general": general, "per_model": per_model, "elsewhere": elsewhere}


def shown_model(d: Any, threads: list[dict[str, Any]]) -> dict[str, Any]:
    words = STATUS_WORDS.get(d.status, d.status)
    if d.status == "renamed" and d.old_name:
        words = f"Renamed from {d.old_name}"
    return {
        "name": d.name,
        "status": d.status,
        "status_words": words,
        "sql_rows": side_by_side(d.sql_before, d.sql_after),
        "properties_rows": side_by_side(d.properties_before, d.properties_after),
        "threads": threads,
    }


def request_comment(change: ChangeRequest, verdict: Review) -> Comment | None:
    """The comment a "changes requested" verdict was given with (it names the model and line, if any)."""
    return (
        Comment.objects.filter(change=change, author_id=verdict.reviewer_id, sha=verdict.sha, body=verdict.body)
        .order_by("-created_at", "-id")
        .only("model", "line")
        .first()
    )


def requested_changes(change: ChangeRequest | None) -> dict[str, Any] | None:
    """The reviewer's latest "changes requested" while the change waits on its author, with the model
    and line its comment named (the change page and the review page show it); None otherwise."""
    if change is None or change.state != ChangeState.CHANGES_REQUESTED:
        return None
    verdict = review.latest_request(change)
    if verdict is None:
        return None
    comment = request_comment(change, verdict)
    return {
        "review": verdict,
        "reviewer": person(verdict.reviewer),
        "body": verdict.body,
        "model": comment.model if comment else "",
        "line": comment.line if comment else None,
    }


def person(user: Any) -> str:
    if user is None:
        return "a reviewer"
    return user.get_full_name() or user.get_username()


# --------------------------------------------------------------------------- forms


class ApproveForm(forms.Form):
    sha = forms.RegexField(regex=r"^[0-9a-f]{40}$", widget=forms.HiddenInput)
    body = forms.CharField(required=False, widget=forms.Textarea, label="Comment (optional)")


class RequestChangesForm(forms.Form):
    # The text is checked by the service, so that page, API and service say the same thing.
    body = forms.CharField(required=False, strip=False, widget=forms.Textarea, label="What should change")
    sha = forms.RegexField(regex=r"^[0-9a-f]{40}$", required=False, widget=forms.HiddenInput)
    model = forms.CharField(required=False, max_length=200, label="Model (optional)")
    line = forms.IntegerField(required=False, min_value=1, label="Line (optional)")


class CommentForm(forms.Form):
    body = forms.CharField(required=False, strip=False, widget=forms.Textarea, label="Comment")
    model = forms.CharField(required=False, max_length=200, label="Model (optional)")
    line = forms.IntegerField(required=False, min_value=1, label="Line (optional)")
    reply_to = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class PolicyForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Approve automatically when every rule that is on is met")
    max_build_minutes = forms.IntegerField(min_value=1, max_value=24 * 60, label="Longest build (minutes)")
    require_build_passed = forms.BooleanField(required=False)
    require_tests_passed = forms.BooleanField(required=False)
    require_fast_build = forms.BooleanField(required=False)
    require_no_breaking_change = forms.BooleanField(required=False)
    require_no_validation_error = forms.BooleanField(required=False)
    merge_on_approval = forms.BooleanField(required=False, label="Merge and deploy as soon as a change is approved")


def _first_error(form: forms.Form) -> str:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        return f"{label}: {errors[0]}" if label else errors[0]
    return "Check the form."


# --------------------------------------------------------------------------- the queue


@page("change.review")
def review_queue(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show") or "mine"
    if show not in reviews.SHOWS:
        show = "mine"
    items = reviews.review_queue(request.user, show)
    rows = []
    for item in items:
        summary = WAITS.sub("", item.policy_summary) if item.eligible is False else item.policy_summary
        rows.append({"item": item, "change": item.change, "age": age_words(item.age), "summary": summary,
                     "breaking": len(item.breaking),
                     "clock": clock_of(item.sla, paused=item.change.state == ChangeState.CHANGES_REQUESTED)})
    tabs = [{"key": key, "label": label, "current": key == show} for key, label in SHOW_TABS]
    context = {"rows": rows, "tabs": tabs, "show": show, "empty": EMPTY_QUEUE[show],
               "may_manage_policy": access.can(request.user, "policy.manage")}
    return render(request, "review/queue.html", context)


# --------------------------------------------------------------------------- one change


def _review_context(request: HttpRequest, pk: int, **extra: Any) -> dict[str, Any]:
    try:
        data = reviews.review_data(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None
    user, change = request.user, data["change"]
    names = [d.name for d in data["diffs"]]
    threads = grouped_threads(data["comments"], names)
    models = [shown_model(d, threads["per_model"][d.name]) for d in data["diffs"]]
    build = data["build"]
    nodes = (build.nodes or []) if build else []
    by_model = [n for n in nodes if n.get("kind") != "test"]
    tests = [n for n in nodes if n.get("kind") == "test"]
    head = change.head_sha
    shown_reviews = [
        {"review": r, "withdrawn": r.verdict == Verdict.APPROVED and r.sha != head and change.state != ChangeState.MERGED,
         "figures": sorted((r.figures or {}).items())}
        for r in data["reviews"]
    ]
    under_review = change.state in (ChangeState.SUBMITTED, ChangeState.CHANGES_REQUESTED, ChangeState.APPROVED)
    context = {
        **data,
        "models": models,
        "model_names": names,
        "threads": threads,
        "model_nodes": by_model,
        "test_nodes": tests,
        "shown_reviews": shown_reviews,
        "lineage_rows": [{"model": m, "downstream": ds} for m, ds in data["lineage"].items()],
        "requested": requested_changes(change),
        "may_approve": data["can_review"] and change.state == ChangeState.SUBMITTED,
        "may_rebuild": change.is_open and (access.can(user, "model.edit", change) or access.can(user, "change.review")),
        "author_waits": data["is_author"] and under_review,
        "overdue": bool(data["due"] and data["due"] < timezone.now() and change.state == ChangeState.SUBMITTED),
        "may_see_queue": access.can(user, "change.review"),
        "under_review": under_review,
        "changes_typed": {"body": "", "model": "", "line": ""},
        **extra,
    }
    return context


@page("catalog.view")
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        context = _review_context(request, pk)
    except ServiceError as exc:  # e.g. the change's branch is gone from the repository
        messages.error(request, exc.message)
        return redirect("change", pk=pk)
    return render(request, "review/review.html", context)


def _back(pk: int, anchor: str = "") -> HttpResponse:
    return redirect(reverse("review", kwargs={"pk": pk}) + anchor)


@page("change.review", methods=("POST",))
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The approval must name the version you reviewed: reload the page and approve again.")
        return _back(pk)
    try:
        review.approve_change(request.user, pk, form.cleaned_data["sha"], form.cleaned_data["body"], source="page")
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:  # one's own change: the service says why, in plain words
        messages.error(request, str(exc))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Approved. The change goes live once it is merged.")
    return _back(pk)


@page("change.review", methods=("POST",))
def request_changes(request: HttpRequest, pk: int) -> HttpResponse:
    form = RequestChangesForm(request.POST)
    if not form.is_valid():
        return _changes_again(request, pk, form, _first_error(form))
    data = form.cleaned_data
    try:
        review.request_changes(request.user, pk, data["body"], data["sha"] or None, model=data["model"].strip(),
                               line=data["line"], source="page")
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:  # one's own change
        messages.error(request, str(exc))
    except ServiceError as exc:  # no text, a newer save, a state that moved on: keep what was typed
        return _changes_again(request, pk, form, exc.message)
    else:
        messages.success(request, "Sent back to the author with your request.")
    return _back(pk)


def _changes_again(request: HttpRequest, pk: int, form: RequestChangesForm, error: str) -> HttpResponse:
    """The review page again (as it is now), the request-changes form filled with what was typed and the
    error beside it; the form now names the version the page shows."""
    typed = {key: form.data.get(key, "") for key in ("body", "model", "line")}
    try:
        context = _review_context(request, pk, changes_typed=typed, changes_error=error)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _back(pk)
    return render(request, "review/review.html", context, status=400)


@page("change.comment", methods=("POST",))
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return _back(pk, "#comments")
    data = form.cleaned_data
    try:
        made = review.add_comment(request.user, pk, data["body"], model=data["model"].strip(), line=data["line"],
                                  reply_to=data["reply_to"], source="page")
    except NotFound as exc:
        if data["reply_to"] is not None and exc.message.startswith("There is no comment"):  # the thread, not the change
            messages.error(request, exc.message)
            return _back(pk, "#comments")
        raise Http404(exc.message) from None
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _back(pk, "#comments")
    messages.success(request, "Comment added.")
    return _back(pk, f"#comment-{made.pk}")


# The roles that take part in a review (authors, reviewers, admins) may ask; runner.ci.retry_build
# decides for this change: its author, or a reviewer.
@page("change.comment", methods=("POST",))
def rebuild(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        ci.retry_build(request.user, changes.get_change(request.user, pk))
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The change is queued to be built again.")
    return _back(pk, "#ci")


# --------------------------------------------------------------------------- the policy


def _policy_initial(current: ReviewPolicy) -> dict[str, Any]:
    initial = {key: getattr(current, key) for key in policy.EDITABLE if key != "max_build_seconds"}
    initial["max_build_minutes"] = max(1, round(current.max_build_seconds / 60))
    return initial


def _policy_changes(current: ReviewPolicy, form: PolicyForm) -> dict[str, Any]:
    """Only what the form changes (a build limit that is not whole minutes stays as it is if untouched)."""
    data = form.cleaned_data
    wanted: dict[str, Any] = {k: bool(data[k]) for k in policy.EDITABLE if k != "max_build_seconds"}
    if data["max_build_minutes"] != _policy_initial(current)["max_build_minutes"]:
        wanted["max_build_seconds"] = data["max_build_minutes"] * 60
    return {k: v for k, v in wanted.items() if getattr(current, k) != v}


@page("policy.manage", methods=("GET", "POST"))
def review_policy(request: HttpRequest) -> HttpResponse:
    current = ReviewPolicy.current()
    form = PolicyForm(request.POST or None, initial=_policy_initial(current))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            wanted = _policy_changes(current, form)
            if not wanted:
                messages.info(request, "Nothing changed.")
                return redirect("review-policy")
            try:
                policy.update_policy(request.user, wanted, source="page")
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "The auto-approval policy is saved; it applies to the next builds.")
                return redirect("review-policy")
        status = 400
    rules = [{"field": form[field], "rule": key, "label": label, "meaning": meaning}
             for field, key, label, meaning in RULES]
    return render(request, "review/policy.html", {"form": form, "rules": rules, "current": current},
                  status=status)
