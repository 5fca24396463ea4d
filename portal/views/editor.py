"""The analysts' editor page: `editor/?change=ID&model=NAME`.

The page itself is a shell: the model list, the editor, the checks, the preview, the details form and
the test results are drawn by the editor bundle (static/editor/editor.js, built from frontend/) through
the API (/api/v1/...), as a program using the API would. This view only checks who may open it, reads
which change and model to start with, and says which SQL dialect the warehouse speaks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from models_service import changes, review
from models_service.errors import NotFound
from portal.views.changes import MODEL_NAME
from portal.views.decorators import page
from portal.views.review import person, request_comment


def warehouse_dialect() -> str:
    """The SQL dialect the editor highlights and completes in: the warehouse's."""
    url = str(getattr(settings, "DMAAS_WAREHOUSE", "") or "")
    return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "duckdb"


def _start_change(request: HttpRequest, raw: str | None) -> Any:
    """The change to edit in, if the query names one the user may edit; else None (a first save opens one)."""
    if not raw:
        return None
    try:
        change = changes.get_change(request.user, raw)
    except NotFound as exc:
        messages.error(request, f"{exc.message} Your saves will open a new change.")
        return None
    if not changes.can_edit(request.user, change):
        state = change.get_state_display().lower()
        messages.info(
            request,
            f"The change “{change.title}” is {state} and cannot be edited: your first save opens a new change.",
        )
        return None
    return change


@page("model.edit")
def editor(request: HttpRequest) -> HttpResponse:
    change = _start_change(request, request.GET.get("change"))
    name = (request.GET.get("model") or "").strip()
    if name and not MODEL_NAME.fullmatch(name):
        messages.error(
            request, "A model's name uses letters, digits and underscores, and starts with a letter."
        )
        name = ""
    latest_request = review.latest_request(change) if change else None  # the reviewer's words, for the banner
    context = {
        "latest_request": latest_request,
        "latest_request_by": person(latest_request.reviewer) if latest_request else "",
        "latest_request_on": request_comment(change, latest_request) if latest_request else None,
        "change": change,
        "model_name": name,
        "dialect": warehouse_dialect(),
        "user_label": request.user.get_full_name() or request.user.get_username(),
    }
    return render(request, "editor/editor.html", context)
