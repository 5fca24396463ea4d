"""The change-request pages: my changes, a new change, one change with its diff, saves and state buttons.

Git stays out of sight: no branch names, no commit ids, no "commit"; a commit is a "save" and a
commit on main a "version". Every write is one service call (models_service.changes / merging);
a ServiceError becomes a message on the page (or the form's error), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from models_service import changes, merging, reading
from models_service.access import can, denied_message
from models_service.errors import MergeConflict, NotFound, ServiceError
from models_service.models import ChangeRequest, ChangeState, IndexedNode, NodeKind
from models_service.models.changes import OPEN_STATES
from portal.forms import ChangeForm
from portal.views.decorators import page
from runner import ci

PAGE_SIZE = 50
STATE_TABS = {
    "open": ("Open", Q(state__in=OPEN_STATES)),
    "merged": ("Merged", Q(state=ChangeState.MERGED)),
    "abandoned": ("Abandoned", Q(state=ChangeState.ABANDONED)),
}
MODEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STATUS_WORDS = {"added": "New model", "modified": "Changed", "deleted": "Deleted", "renamed": "Renamed"}


# --------------------------------------------------------------------------- who may see changes


def may_see_changes(user: Any) -> bool:
    """Authors (model.edit) list their own changes; reviewers (change.view_all) list submitted ones."""
    return can(user, "model.edit") or can(user, "change.view_all")


def seeing_changes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Put outside `page(None, ...)`: 403 for a role that can neither edit nor review, checked before
    the method (as `page(action)` does); an anonymous visitor is left to `page`, which sends them to log in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not may_see_changes(request.user):
            raise PermissionDenied(denied_message("model.edit"))
        return view(request, *args, **kwargs)

    return wrapper


def change_or_404(user: Any, pk: int) -> ChangeRequest:
    """The change if the user may see it; someone else's draft is a 404, as if it did not exist."""
    try:
        return changes.get_change(user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None


# --------------------------------------------------------------------------- diffs for people

HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def diff_rows(text: str) -> list[dict[str, Any]]:
    """A unified diff as table rows: kind (add, del, ctx, gap), old and new line numbers, the text.

    The file headers (---/+++) are dropped: they name files, and the page names the model already.
    The text is escaped by the template like any other value.
    """
    rows: list[dict[str, Any]] = []
    old = new = 0
    for line in text.splitlines():
        if line.startswith(("--- ", "+++ ")) and not rows:
            continue
        if match := HUNK.match(line):
            old, new = int(match.group(1)), int(match.group(2))
            if rows:
                rows.append({"kind": "gap", "old": "", "new": "", "text": "…"})
            continue
        if line.startswith("\\"):
            continue  # "\ No newline at end of file"
        mark, body = line[:1], line[1:]
        if mark == "+":
            rows.append({"kind": "add", "old": "", "new": new, "text": body})
            new += 1
        elif mark == "-":
            rows.append({"kind": "del", "old": old, "new": "", "text": body})
            old += 1
        else:
            rows.append({"kind": "ctx", "old": old, "new": new, "text": body})
            old, new = old + 1, new + 1
    return rows


def shown_diff(d: Any) -> dict[str, Any]:
    """A models_service ModelDiff as the templates show it."""
    words = STATUS_WORDS.get(d.status, d.status)
    if d.status == "renamed" and d.old_name:
        words = f"Renamed from {d.old_name}"
    return {
        "name": d.name,
        "status": d.status,
        "status_words": words,
        "sql_rows": diff_rows(d.sql_diff),
        "properties_rows": diff_rows(d.properties_diff),
    }


def saved_at(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- my changes


@seeing_changes
@page(None)
def my_changes(request: HttpRequest) -> HttpResponse:
    user = request.user
    may_edit, may_see_all = can(user, "model.edit"), can(user, "change.view_all")
    scope = request.GET.get("scope") or ("mine" if may_edit else "all")
    if scope != "all" or not may_see_all:
        scope = "mine"
    state = request.GET.get("state") if request.GET.get("state") in STATE_TABS else "open"
    visible = changes.visible_changes(user)
    if scope == "mine":
        visible = visible.filter(author=user)
    counts = visible.aggregate(**{key: Count("pk", filter=q) for key, (_, q) in STATE_TABS.items()})
    listing = Paginator(visible.filter(STATE_TABS[state][1]), PAGE_SIZE).get_page(request.GET.get("page"))
    # The models each open change touches, from the index (one query for the page, no git).
    refs = {c.branch_name: c.pk for c in listing if c.branch and c.is_open}
    touched: dict[int, list[str]] = {}
    for ref, name in (
        IndexedNode.objects.filter(ref__in=list(refs), kind=NodeKind.MODEL).order_by("name").values_list("ref", "name")
    ):
        touched.setdefault(refs[ref], []).append(name)
    rows = [{"change": c, "models": touched.get(c.pk, []), "saved": c.head_sha != c.base_sha} for c in listing]
    tabs = [
        {"key": key, "label": label, "count": counts[key], "current": key == state}
        for key, (label, _) in STATE_TABS.items()
    ]
    context = {
        "rows": rows,
        "page_obj": listing,
        "tabs": tabs,
        "state": state,
        "scope": scope,
        "may_see_all": may_see_all,
        "may_edit": may_edit,
        "form": ChangeForm(),
    }
    return render(request, "changes/list.html", context)


@page("model.edit", methods=("GET", "POST"))
def new_change(request: HttpRequest) -> HttpResponse:
    form = ChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change = changes.open_change(
                request.user, form.cleaned_data["title"], form.cleaned_data["description"]
            )
        except ServiceError as exc:
            form.add_error("title" if exc.field in (None, "title") else None, exc.message)
        else:
            messages.success(request, f"Change “{change.title}” is open. Add or edit models in it.")
            return redirect("change", pk=change.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "changes/new.html", {"form": form}, status=status)


# --------------------------------------------------------------------------- one change


def detail_context(request: HttpRequest, change: ChangeRequest, **extra: Any) -> dict[str, Any]:
    user = request.user
    may_edit = changes.can_edit(user, change)
    try:
        diffs = [shown_diff(d) for d in reading.change_diff(user, change)]
        saves = reading.change_commits(user, change)
        problem = ""
    except ServiceError as exc:  # e.g. its branch is gone from the repository
        diffs, saves, problem = [], [], exc.message
    for save in saves:
        save["at"] = saved_at(save["at"])
    state = change.state
    # The service's reason speaks of "main"; the page says it in the analyst's words.
    reason = "" if change.update_reason == merging.BASE_MOVED else change.update_reason
    return {
        "change": change,
        "review_box": review_box(change),
        "update_reason": reason,
        "diffs": diffs,
        "saves": saves,
        "problem": problem,
        "may_edit": may_edit,
        "may_submit": may_edit and state in (ChangeState.DRAFT, ChangeState.CHANGES_REQUESTED),
        "may_withdraw": may_edit
        and state in (ChangeState.SUBMITTED, ChangeState.CHANGES_REQUESTED, ChangeState.APPROVED),
        "may_abandon": may_edit,
        "mine": change.author_id == user.pk,
        **extra,
    }


def review_box(change: ChangeRequest) -> dict[str, Any] | None:
    """The change page's "Review" box: the latest CI build with the policy's summary, and the
    reviewer's request while the change waits on its author. None for a draft never built."""
    from portal.views.review import requested_changes  # the review pages import this module

    build = ci.latest_build(change)
    if build is None and change.state == ChangeState.DRAFT:
        return None
    return {
        "build": build,
        "stale": bool(build and build.sha != change.head_sha),
        "summary": (build.policy or {}).get("summary", "") if build else "",
        "requested": requested_changes(change),
    }


@seeing_changes
@page(None)
def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request.user, pk)
    wanted = request.GET.get("edit", "").strip()
    if wanted:  # the "Edit another model" box: a plain GET form, no script needed
        if not MODEL_NAME.fullmatch(wanted):
            messages.error(request, f"“{wanted[:100]}” is not a model name: use letters, digits and underscores.")
        elif not has_model(request.user, change, wanted):
            messages.error(request, f"There is no model {wanted} in this change. To create it, use “Add a model”.")
        else:
            return redirect("change-model-edit", pk=change.pk, name=wanted)
    return render(request, "changes/detail.html", detail_context(request, change))


def has_model(user: Any, change: ChangeRequest, name: str) -> bool:
    try:
        reading.get_model(user, name, change=change)
    except NotFound:
        return False
    return True


def _state_move(request: HttpRequest, pk: int, move: Callable[..., ChangeRequest], done: str) -> HttpResponse:
    change = change_or_404(request.user, pk)
    try:
        move(request.user, change)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("change", pk=change.pk)


@page("model.edit", methods=("POST",))
def submit_change(request: HttpRequest, pk: int) -> HttpResponse:
    return _state_move(request, pk, changes.submit_change, "Submitted for review. A reviewer will look at it.")


@page("model.edit", methods=("POST",))
def withdraw_change(request: HttpRequest, pk: int) -> HttpResponse:
    return _state_move(request, pk, changes.withdraw_change, "Taken back from review: it is a draft again.")


@page("model.edit", methods=("POST",))
def abandon_change(request: HttpRequest, pk: int) -> HttpResponse:
    return _state_move(
        request, pk, changes.abandon_change, "The change is abandoned. What it saved is kept in its history."
    )


@page("model.edit", methods=("POST",))
def update_change(request: HttpRequest, pk: int) -> HttpResponse:
    """The one-click update; on a conflict the page lists the models and asks, per model, whose version
    to keep, then the same button posts the choices (`keep:<model>` = mine | theirs)."""
    change = change_or_404(request.user, pk)
    resolutions = {
        key.removeprefix("keep:"): value for key, value in request.POST.items() if key.startswith("keep:") and value
    }
    try:
        result = merging.update_change(request.user, change, resolutions)
    except MergeConflict as exc:
        change.refresh_from_db()
        conflicts = _conflicts_by_model(exc.conflicts, resolutions)
        context = detail_context(request, change, conflicts=conflicts)
        return render(request, "changes/detail.html", context, status=409)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if result.changed:
            messages.success(request, "The change now has the latest version of every model it did not change.")
        else:
            messages.info(request, "The change was up to date already.")
    return redirect("change", pk=change.pk)


def _conflicts_by_model(conflicts: list[Any], chosen: dict[str, str]) -> list[dict[str, Any]]:
    by_model: dict[str, dict[str, Any]] = {}
    for c in conflicts:
        entry = by_model.setdefault(c.model, {"model": c.model, "messages": [], "choice": chosen.get(c.model, "")})
        entry["messages"].append(c.message)
    return list(by_model.values())


@page("model.edit", methods=("POST",))
def delete_model(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    change = change_or_404(request.user, pk)
    base = request.POST.get("base_sha") or None
    try:
        changes.delete_model(request.user, change, name, base_sha=base)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{name} is deleted in this change.")
    return redirect(reverse("change", kwargs={"pk": change.pk}) + "#models")
