"""Incident pages: the list (open and acknowledged first) and one incident with its timeline; platform
admins acknowledge, assign and resolve from it.

Views stay thin: `@page` checks the role, one function of runner.incidents does the work, and a
ServiceError becomes a message (or the form's error, with what was typed kept), never a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from models_service import access
from models_service.errors import NotFound, ServiceError
from portal.views.changes import MODEL_NAME
from portal.views.decorators import page
from portal.views.review import age_words
from portal.views.sla import clock_of
from runner import incidents, sla
from runner.models import Incident, IncidentStatus, SlaSettings
from runner.sla.agreement import incident_items

PAGE_SIZE = 50
S = IncidentStatus
TABS = {
    "open": ("Open", Q(status__in=(S.OPEN, S.ACKNOWLEDGED))),
    "resolved": ("Resolved", Q(status=S.RESOLVED)),
    "all": ("All", Q()),
}
EMPTY = {
    "open": "No open incident: production runs are healthy.",
    "resolved": "No incident has been resolved yet.",
    "all": "No incident yet.",
}


def incident_age(incident: Incident, now: Any = None) -> str:
    """How long it has been open; for a resolved one, how long it was open."""
    end = incident.resolved_at or now or timezone.now()
    return age_words(end - incident.opened_at)


def subject_model(incident: Incident) -> str:
    """The model the incident is about ("" for a schedule's), to link its history."""
    subject = incident.subject
    return subject if not subject.startswith("schedule:") and MODEL_NAME.fullmatch(subject) else ""


@page("incident.view")
def incident_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") if request.GET.get("status") in TABS else "open"
    counts = Incident.objects.aggregate(**{key: Count("pk", filter=q) for key, (_, q) in TABS.items()})
    listing = (
        Incident.objects.filter(TABS[status][1])
        .select_related("assignee")
        .annotate(done=Case(When(status=S.RESOLVED, then=Value(1)), default=Value(0), output_field=IntegerField()))
        .order_by("done", "-last_failure_at", "-id")
    )
    paged = Paginator(listing, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    shown = list(paged)
    # The reaction clock of every row, in one go: the clock, the settings and the incidents once each.
    clocks = {item.link["incident"]: item for item in
              incident_items(sla.clock(), SlaSettings.current(), now, incidents=shown)} if shown else {}
    rows = [{"incident": i, "age": incident_age(i, now), "model": subject_model(i),
             "clock": clock_of(clocks.get(i.pk))} for i in shown]
    tabs = [{"key": key, "label": label, "count": counts[key], "current": key == status}
            for key, (label, _) in TABS.items()]
    context = {"rows": rows, "page_obj": paged, "tabs": tabs, "status": status, "empty": EMPTY[status]}
    return render(request, "incidents/list.html", context)


def _incident_or_404(request: HttpRequest, pk: int) -> Incident:
    try:
        return incidents.get_incident(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None


def _detail(request: HttpRequest, pk: int, *, status: int = 200, **extra: Any) -> HttpResponse:
    incident = _incident_or_404(request, pk)
    may_manage = access.can(request.user, "incident.manage")
    context = {
        "incident": incident,
        "age": incident_age(incident),
        "model": subject_model(incident),
        "deployment": incident.deployment if incident.deployment_id else None,
        "may_manage": may_manage,
        "is_open": incident.status != S.RESOLVED,
        "users": list(get_user_model().objects.filter(is_active=True).order_by("username")) if may_manage else [],
        "typed": {"note": "", "resolution": ""},
        **extra,
    }
    return render(request, "incidents/detail.html", context, status=status)


@page("incident.view")
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk)


def _act(request: HttpRequest, pk: int, act: Any, done: str, field: str | None = None) -> HttpResponse:
    """One admin action; a refusal is a message, or the error at its field with the text kept."""
    try:
        act()
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        if field is not None and exc.field == field:
            typed = {"note": "", "resolution": "", field: request.POST.get(field, "")}
            return _detail(request, pk, status=400, typed=typed, errors={field: exc.message})
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("incident", pk=pk)


@page("incident.manage", methods=("POST",))
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    note = request.POST.get("note", "")
    return _act(request, pk, lambda: incidents.acknowledge(request.user, pk, note),
                "Acknowledged: the owner and the platform admins are told someone is on it.")


@page("incident.manage", methods=("POST",))
def incident_assign(request: HttpRequest, pk: int) -> HttpResponse:
    username = (request.POST.get("assignee") or "").strip()
    done = f"Assigned to {username}." if username else "Nobody is assigned now."
    return _act(request, pk, lambda: incidents.assign(request.user, pk, username or None), done)


@page("incident.manage", methods=("POST",))
def incident_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    resolution = request.POST.get("resolution", "")
    return _act(request, pk, lambda: incidents.resolve(request.user, pk, resolution),
                "Resolved. What you wrote is kept on the incident.", field="resolution")
