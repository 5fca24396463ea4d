"""Model pages: the plain edit form inside a change (until the editor replaces it), a model's history on
main with a diff per version, restoring a version, and opening a change to edit a model.

A save is `changes.save_model` with the version the form was loaded from (`base_sha`): when someone
saved the same model meanwhile, the form comes back with the analyst's text kept and the other
version beside it, and a second save (now based on that version) goes through. Nothing is lost.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from models_service import changes, merging, reading
from models_service.access import can
from models_service.errors import Conflict, NotFound, ServiceError
from models_service.models import ChangeRequest
from models_service.project_files import dump_yaml
from portal.forms import (
    ColumnFormSet,
    ModelEditForm,
    NewModelForm,
    RevertForm,
    column_initial,
    model_spec,
    other_tests,
)
from portal.views.changes import MODEL_NAME, change_or_404, diff_rows, has_model, shown_diff
from portal.views.decorators import page
from portal.views.runs import model_section

HISTORY_LIMIT = 30  # each version's diff is read from git: ~20 ms each
HISTORY_MAX = 200  # with ?all=1


def _model_or_404(user: Any, name: str, **where: Any) -> Any:
    if not MODEL_NAME.fullmatch(name):
        raise Http404(f"There is no model {name[:100]}.")
    try:
        return reading.get_model(user, name, **where)
    except NotFound as exc:
        raise Http404(exc.message) from None


def _closed(request: HttpRequest, change: ChangeRequest) -> HttpResponse | None:
    """Back to the change page, saying why, when the user may not edit models in it."""
    if changes.can_edit(request.user, change):
        return None
    if change.is_open:
        messages.error(request, "Only the change's author (or a platform admin) can edit its models.")
    else:
        messages.error(
            request, f"This change is {change.get_state_display().lower()}: open a new change to edit models."
        )
    return redirect("change", pk=change.pk)


# --------------------------------------------------------------------------- the edit form


def _edit_page(request: HttpRequest, change: ChangeRequest, name: str | None) -> HttpResponse:
    """GET: the form filled from the model on the change (or empty for a new one). POST: save."""
    user = request.user
    if (closed := _closed(request, change)) is not None:
        return closed
    form_class = NewModelForm if name is None else ModelEditForm
    loaded = None
    if name is not None and request.method != "POST":
        loaded = _model_or_404(user, name, change=change)
    elif name is not None:  # a model deleted meanwhile must not cost the analyst their text
        loaded = _version_at(user, name, None, change=change)
    if request.method != "POST":
        initial: dict[str, Any] = {"base_sha": loaded.commit if loaded else change.head_sha}
        if loaded:
            initial.update(sql=loaded.sql, description=loaded.spec.description)
        form = form_class(initial=initial)
        columns = ColumnFormSet(initial=column_initial(loaded.spec if loaded else None), prefix="col")
        return _render_edit(request, change, name, form, columns, loaded)

    form = form_class(request.POST)
    columns = ColumnFormSet(request.POST, prefix="col")
    if not (form.is_valid() and columns.is_valid()):
        return _render_edit(request, change, name, form, columns, loaded, status=400)
    target = name or form.cleaned_data["name"]
    if name is None and has_model(user, change, target):
        form.add_error("name", f"A model named {target} exists already in this change: edit it instead.")
        return _render_edit(request, change, name, form, columns, loaded, status=400)
    base = _version_at(user, target, form.cleaned_data["base_sha"])
    spec = model_spec(target, form, columns, base.spec if base else None)
    try:
        changes.save_model(
            user,
            change,
            target,
            form.cleaned_data["sql"],
            spec,
            base_sha=form.cleaned_data["base_sha"],
            message=form.cleaned_data["message"] or None,
            folder=(form.cleaned_data.get("folder") or None) if name is None else None,
        )
    except Conflict as exc:
        # Keep everything the analyst typed; base the next save on the version they now see.
        data = request.POST.copy()
        data["base_sha"] = exc.current_sha
        form = form_class(data)
        form.is_valid()
        theirs = _other_version(exc, form.cleaned_data.get("sql", ""))
        return _render_edit(request, change, name, form, columns, loaded, status=409, conflict=exc.message,
                            theirs=theirs)
    except ServiceError as exc:
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
        return _render_edit(request, change, name, form, columns, loaded, status=exc.status)
    messages.success(request, f"Saved {target}.")
    return redirect(reverse("change", kwargs={"pk": change.pk}) + f"#model-{target}")


def _version_at(user: Any, name: str, sha: str | None, **where: Any) -> Any:
    """The model as the analyst loaded it (its tests the form does not show are kept), or None."""
    try:
        return reading.get_model(user, name, at=sha, **where)
    except ServiceError:
        return None


def _other_version(exc: Conflict, mine: str) -> dict[str, Any]:
    current = exc.current
    if current is None:
        return {"deleted": True}
    last = current.last_change or {}
    diff = "".join(
        difflib.unified_diff(
            _lines(current.sql), _lines(mine), fromfile="theirs", tofile="yours", n=3
        )
    )
    return {
        "deleted": False,
        "sql": current.sql,
        "properties": dump_yaml(current.spec.to_yaml()) if current.spec is not None else "",
        "who": last.get("author", ""),
        "message": last.get("message", ""),
        "rows": diff_rows(diff),
    }


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def _render_edit(request: HttpRequest, change: ChangeRequest, name: str | None, form: Any, columns: Any,
                 loaded: Any, *, status: int = 200, **extra: Any) -> HttpResponse:
    kept = other_tests(loaded.spec) if loaded else {}
    rows = [{"form": row, "kept": kept.get(row["name"].value() or "", [])} for row in columns.forms]
    context = {
        "change": change,
        "name": name,
        "form": form,
        "columns": columns,
        "column_rows": rows,
        "loaded": loaded,
        **extra,
    }
    return render(request, "models/edit.html", context, status=status)


@page("model.edit", methods=("GET", "POST"))
def edit_model(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    return _edit_page(request, change_or_404(request.user, pk), name)


@page("model.edit", methods=("GET", "POST"))
def new_model(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit_page(request, change_or_404(request.user, pk), None)


# --------------------------------------------------------------------------- history on main


@page("catalog.view")
def model_history(request: HttpRequest, name: str) -> HttpResponse:
    user = request.user
    current = _model_or_404(user, name)
    limit = HISTORY_MAX if request.GET.get("all") else HISTORY_LIMIT
    entries = reading.model_history(user, name, limit=limit)
    versions = []
    for i, entry in enumerate(entries):
        d = reading.version_diff(user, entry.name, entry.sha)
        versions.append(
            {
                "entry": entry,
                "diff": shown_diff(d) if d else None,
                "latest": i == 0,
                "restorable": i > 0 and "deleted" not in entry.parts,
            }
        )
    context = {
        "name": name,
        "current": current,
        "versions": versions,
        "may_edit": can(user, "model.edit"),
        "limited": len(entries) >= limit,
        "show_all": limit < HISTORY_MAX,
        "runs": model_section(user, name) if can(user, "run.view") else None,  # past, now and next in production
    }
    return render(request, "models/history.html", context)


@page("model.edit", methods=("POST",))
def revert_model(request: HttpRequest, name: str) -> HttpResponse:
    form = RevertForm(request.POST)
    if not form.is_valid() or not MODEL_NAME.fullmatch(name):
        messages.error(request, "Choose a version to restore from the list.")
        return redirect("model-history", name=name) if MODEL_NAME.fullmatch(name) else redirect("my-changes")
    try:
        result = merging.revert_model(request.user, name, form.cleaned_data["sha"])
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("model-history", name=name)
    if result.changed:
        messages.success(
            request, f"This new change restores {name} to that version. Submit it for review when it looks right."
        )
    else:
        messages.info(request, f"{name} is already as it was in that version: there is nothing to restore.")
    return redirect("change", pk=result.change.pk)


@page("model.edit", methods=("POST",))
def edit_in_change(request: HttpRequest, name: str) -> HttpResponse:
    """Open a change titled "Edit <name>" and go to the model's form in it."""
    _model_or_404(request.user, name)
    try:
        change = changes.open_change(request.user, f"Edit {name}")
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("model-history", name=name)
    return redirect("change-model-edit", pk=change.pk, name=name)
