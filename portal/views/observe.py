"""Data watch pages: the anomalies the hourly runs found (with filters), the schema changes of
production models, and the sensitivity platform admins tune per model.

Views stay thin: `@page` checks the role, runner.observe.watch does the work (and checks again), and
a refused filter or setting is shown as a message or at its field with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from models_service import access
from models_service.errors import InvalidInput, NotFound, ServiceError
from portal.views.decorators import page
from runner.models import AnomalySettings, AnomalySeverity
from runner.observe import anomalies, record, watch

PAGE_SIZE = 50
FILTERS = ("model", "column", "metric", "severity", "run")


@page("incident.view")
def anomaly_list(request: HttpRequest) -> HttpResponse:
    wanted = {key: request.GET.get(key, "").strip() for key in FILTERS}
    error = ""
    try:
        listing = watch.list_anomalies(request.user, **wanted)
    except InvalidInput as exc:
        error, listing = exc.message, watch.list_anomalies(request.user)
        wanted[exc.field or ""] = ""
    paged = Paginator(listing, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"anomaly": a, "text": record.describe(a)} for a in paged]
    changes = list(watch.list_schema_changes(request.user, model=wanted["model"])[:PAGE_SIZE])
    query = "&".join(f"{k}={v}" for k, v in wanted.items() if v)
    context = {"rows": rows, "page_obj": paged, "wanted": wanted, "error": error, "changes": changes,
               "metrics": list(anomalies.METRICS), "severities": AnomalySeverity.choices, "query": query,
               "may_manage": access.can(request.user, "anomaly.manage")}
    return render(request, "observe/anomalies.html", context, status=400 if error else 200)


def _form_fields(post: Any) -> dict[str, Any]:
    """The form as the service takes it: the checkbox is there or not; numbers as typed."""
    fields: dict[str, Any] = {"enabled": post.get("enabled") in ("on", "true", "1")}
    for key in ("warn_score", "incident_score", "min_history"):
        fields[key] = post.get(key, "").strip()
    return fields


@page("anomaly.manage", methods=("GET", "POST"))
def anomaly_settings(request: HttpRequest) -> HttpResponse:
    model = (request.POST.get("model") if request.method == "POST" else request.GET.get("model", "")) or ""
    model = model.strip()
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            watch.save_settings(request.user, model, _form_fields(request.POST), source="page")
        except NotFound as exc:
            errors["model"] = exc.message
        except ServiceError as exc:
            errors[exc.field or "model"] = exc.message
        else:
            messages.success(request, f"Saved the sensitivity of {model or 'every model without its own'}.")
            return redirect(f"{reverse('anomaly-settings')}?model={model}")
    try:
        current = watch.settings_of(request.user, model)
    except NotFound as exc:
        if request.method == "GET":
            raise Http404(exc.message) from None
        current = watch.settings_of(request.user, "")
    typed = dict(current)
    if errors:
        typed.update({k: request.POST.get(k, "") for k in ("warn_score", "incident_score", "min_history")},
                     enabled=request.POST.get("enabled") in ("on", "true", "1"), model=model)
    context = {"model": model, "current": typed, "errors": errors,
               "own": AnomalySettings.objects.exclude(model="").order_by("model"),
               "defaults": watch.settings_of(request.user, "")}
    return render(request, "observe/settings.html", context, status=400 if errors else 200)
