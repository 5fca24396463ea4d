"""Run monitoring pages: the run history, one live run, what runs next, and the schedules.

Views stay thin: `@page` checks the role, one service function of runner.runs does the work, and a
ServiceError (or a PermissionDenied from the service) becomes a message and a redirect, never a 500;
NotFound is a 404. What is left here is presentation: durations in words, the node cells that both
the page and its status.json show (static/js/run.js updates the page in place from the latter), a
plain-words reading of a cron line, and the schedule form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from models_service import access
from models_service.errors import NotFound, ServiceError
from portal.views.decorators import page
from runner import runs
from runner.models import NodeRun, NodeStatus, OnOverlap, Run, RunStatus, Schedule

PAGE_SIZE = 50
N = NodeStatus
PASSED = (N.SUCCESS, N.PASS, N.WARN)
FAILED = (N.ERROR, N.TIMEOUT, N.FAIL)
DONE = (*PASSED, *FAILED, N.SKIPPED)
# Short words for a node's status in the table (the model's labels are sentences).
NODE_WORDS = {
    N.PENDING: "waiting", N.QUEUED: "queued", N.RUNNING: "running", N.SUCCESS: "built", N.ERROR: "error",
    N.TIMEOUT: "timed out", N.SKIPPED: "skipped", N.PASS: "passed", N.WARN: "warned", N.FAIL: "failed",
}
NEXT_SLOTS = 3  # slots shown per schedule on "what runs next"
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


# --------------------------------------------------------------------------- presentation helpers


def duration_words(seconds: float | None) -> str:
    """0.4 s, 12 s, 3 min 5 s, 2 h 4 min: how long something took."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def run_seconds(run: Run, now: dt.datetime | None = None) -> float | None:
    """How long the run took, or has been going."""
    if run.started_at is None:
        return None
    end = run.finished_at or now or timezone.now()
    return max(0.0, (end - run.started_at).total_seconds())


def _local_time(at: dt.datetime | None) -> str:
    return timezone.localtime(at).strftime("%H:%M:%S") if at else ""


def node_cells(node: NodeRun) -> dict[str, Any]:
    """What the run page's table shows of a node; status.json sends the same, for run.js."""
    if node.resource_type == "test":
        rows = f"{node.failures} failing" if node.failures is not None else ""
    else:
        rows = str(node.rows) if node.rows is not None else ""
    return {
        "id": node.pk,
        "status": node.status,
        "status_label": NODE_WORDS.get(node.status, node.status),
        "status_title": node.get_status_display(),
        "attempts": str(node.attempts) if node.attempts else "",
        "worker": node.worker,
        "started": _local_time(node.started_at),
        "seconds": f"{node.seconds:.2f}" if node.seconds is not None else "",
        "rows": rows,
        "line": f"line {node.error_line}" if node.error_line else "",
        "error_line": node.error_line,
        "message": node.message,
    }


def sql_lines(sql: str, error_line: int | None) -> list[dict[str, Any]]:
    return [{"num": i, "text": text, "error": i == error_line} for i, text in enumerate(sql.splitlines(), 1)]


def node_counts(run: Run) -> dict[str, int]:
    """The run's nodes by outcome, in one query."""
    return NodeRun.objects.filter(run=run).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status__in=DONE)),
        passed=Count("id", filter=Q(status__in=PASSED)),
        failed=Count("id", filter=Q(status__in=FAILED)),
        skipped=Count("id", filter=Q(status=N.SKIPPED)),
        running=Count("id", filter=Q(status=N.RUNNING)),
        waiting=Count("id", filter=Q(status__in=(N.PENDING, N.QUEUED))),
    )


def retryable(run: Run, counts: dict[str, int]) -> bool:
    return run.finished and bool(counts["failed"] or counts["skipped"])


def cancellable(run: Run) -> bool:
    return run.status in (RunStatus.QUEUED, RunStatus.RUNNING)


def _hhmm(hour: str, minute: str) -> str:
    return f"{int(hour):02d}:{int(minute):02d}"


def _days(dow: str) -> str | None:
    """A cron weekday field in words, or None when it is beyond these few shapes."""
    def name(d: str) -> str:
        return DAY_NAMES[int(d) % 7]

    if dow == "*":
        return "every day"
    if dow in ("1-5", "mon-fri", "MON-FRI"):
        return "Monday to Friday"
    if dow in ("0,6", "6,0", "6-7", "sat,sun", "SAT,SUN"):
        return "Saturday and Sunday"
    if all(part.isdigit() and int(part) <= 7 for part in dow.split(",")):
        names = [name(part) for part in dow.split(",")]
        return "every " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
    return None


def cron_words(cron: str) -> str:
    """A few common cron shapes in plain words; "" for anything else (the next slot says the rest)."""
    parts = (cron or "").split()
    if len(parts) != 5:
        return ""
    minute, hour, dom, month, dow = parts
    rest_any = dom == "*" and month == "*"
    if rest_any and dow == "*" and hour == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {int(minute[2:])} minutes"
        if minute.isdigit():
            return "every hour, on the hour" if int(minute) == 0 else f"every hour at {int(minute)} minutes past"
    if not minute.isdigit():
        return ""
    if rest_any and dow == "*" and hour.startswith("*/") and hour[2:].isdigit():
        return f"every {int(hour[2:])} hours at {int(minute)} minutes past"
    hours = hour.split(",")
    if not all(h.isdigit() and int(h) < 24 for h in hours):
        return ""
    times = ", ".join(_hhmm(h, minute) for h in hours)
    if rest_any:
        days = _days(dow)
        return f"{days} at {times}" if days else ""
    if dom.isdigit() and month == "*" and dow == "*":
        return f"on day {int(dom)} of every month at {times}"
    return ""


def _schedule_or_404(pk: int) -> Schedule:
    schedule = Schedule.objects.select_related("after").filter(pk=pk).first()
    if schedule is None:
        raise Http404(f"There is no schedule {pk}.")
    return schedule


# --------------------------------------------------------------------------- the history


def _filters(request: HttpRequest) -> dict[str, str]:
    """The list's filters as given, each dropped when it is not a value the list knows."""
    schedule = (request.GET.get("schedule") or "").strip()
    status = (request.GET.get("status") or "").strip()
    model = (request.GET.get("model") or "").strip()[:200]
    return {
        "schedule": schedule if schedule == "none" or schedule.isdigit() else "",
        "status": status if status in RunStatus.values else "",
        "model": model,
    }


def filtered_runs(wanted: dict[str, str]):
    """Runs newest first, each with its nodes counted by outcome (no query per row)."""
    listing = Run.objects.select_related("schedule").annotate(
        passed=Count("nodes", filter=Q(nodes__status__in=PASSED)),
        failed=Count("nodes", filter=Q(nodes__status__in=FAILED)),
        skipped=Count("nodes", filter=Q(nodes__status=N.SKIPPED)),
    ).order_by("-created_at", "-id")
    if wanted["schedule"] == "none":
        listing = listing.filter(schedule__isnull=True)
    elif wanted["schedule"]:
        listing = listing.filter(schedule_id=int(wanted["schedule"]))
    if wanted["status"]:
        listing = listing.filter(status=wanted["status"])
    if wanted["model"]:
        listing = listing.filter(pk__in=NodeRun.objects.filter(name=wanted["model"]).values("run_id"))
    return listing


@page("run.view")
def run_history(request: HttpRequest) -> HttpResponse:
    wanted = _filters(request)
    listing = Paginator(filtered_runs(wanted), PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [{"run": r, "duration": duration_words(run_seconds(r, now))} for r in listing]
    context = {
        "rows": rows,
        "page_obj": listing,
        "wanted": wanted,
        "filtered": any(wanted.values()),
        "query": urlencode({k: v for k, v in wanted.items() if v}),
        "schedules": list(Schedule.objects.only("pk", "name").order_by("name")),
        "statuses": RunStatus.choices,
        "may_trigger": access.can(request.user, "run.trigger"),
        "typed": {"select": request.GET.get("run_select", "")[:500],
                  "exclude": request.GET.get("run_exclude", "")[:500]},
    }
    return render(request, "runs/list.html", context)


@page("run.trigger", methods=("POST",))
def run_new(request: HttpRequest) -> HttpResponse:
    select = (request.POST.get("select") or "")[:500]
    exclude = (request.POST.get("exclude") or "")[:500]
    try:
        run = runs.request_run(request.user, select=select, exclude=exclude)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:  # a selector it cannot read: the form comes back with the text typed
        messages.error(request, exc.message)
        return redirect(reverse("runs") + "?" + urlencode({"run_select": select, "run_exclude": exclude}))
    else:
        messages.success(request, _started_words(run))
        return redirect("run", pk=run.pk)
    return redirect("runs")


def _started_words(run: Run) -> str:
    if run.status == RunStatus.QUEUED:
        return f"Run #{run.pk} is queued behind the run in progress; it starts when that one ends."
    if run.status == RunStatus.RUNNING:
        return f"Run #{run.pk} has started."
    return f"Run #{run.pk}: {run.get_status_display().lower()}. {run.message}".strip()


# --------------------------------------------------------------------------- one run


def _run_or_404(request: HttpRequest, pk: int) -> Run:
    try:
        return runs.get_run(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None


def run_summary(run: Run, counts: dict[str, int]) -> dict[str, Any]:
    """The run's part of status.json (and of the page's header)."""
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": run.finished,
        "message": run.message,
        "elapsed": duration_words(run_seconds(run)),
        "counts": counts,
        "retryable": retryable(run, counts),
        "cancellable": cancellable(run),
    }


@page("run.view")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(request, pk)
    counts = node_counts(run)
    nodes = []
    for node in NodeRun.objects.filter(run=run).order_by("id"):  # the plan's order
        nodes.append({"node": node, "cells": node_cells(node),
                      "sql": sql_lines(node.compiled_sql, node.error_line)})
    context = {
        "run": run,
        "summary": run_summary(run, counts),
        "counts": counts,
        "nodes": nodes,
        "retry_of": run.retry_of_id,
        "may_trigger": access.can(request.user, "run.trigger"),
        # the data watch's warnings on this run (runner/observe): what its builds measured looked wrong
        "anomalies": list(run.anomalies.order_by("-score")[:20]),
        # an ended run's measurements are judged in a task of their own, seconds after its end
        "judging": run.finished_at is not None and run.judged_at is None and settings.DMAAS_MEASURE_BUILDS,
    }
    return render(request, "runs/detail.html", context)


@page("run.view")
def run_status(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = runs.get_run(request.user, pk)
    except NotFound as exc:
        return JsonResponse({"error": {"code": "not_found", "message": exc.message}}, status=404)
    counts = node_counts(run)
    nodes = [node_cells(n) for n in NodeRun.objects.filter(run=run).defer("compiled_sql", "parents").order_by("id")]
    response = JsonResponse({**run_summary(run, counts), "nodes": nodes})
    response["Cache-Control"] = "no-store"
    return response


def _act_on_run(request: HttpRequest, pk: int, act: Any, done: Any) -> HttpResponse:
    try:
        result = act(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done(result))
        return redirect("run", pk=result.pk)
    return redirect("run", pk=pk)


@page("run.trigger", methods=("POST",))
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_run(request, pk, runs.retry_run,
                       lambda r: f"Retrying what failed in run #{pk}: " + _started_words(r))


@page("run.trigger", methods=("POST",))
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_run(request, pk, runs.cancel_run,
                       lambda r: "Cancelled: nodes not started yet are skipped; running ones finish.")


# --------------------------------------------------------------------------- what runs next


@page("run.view")
def runs_next(request: HttpRequest) -> HttpResponse:
    upcoming = runs.next_runs(per_schedule=NEXT_SLOTS)
    followers: dict[int, list[Schedule]] = {}
    for schedule in Schedule.objects.filter(enabled=True, after__isnull=False).order_by("name"):
        followers.setdefault(schedule.after_id, []).append(schedule)
    ran = set(NodeRun.objects.filter(name__in={m for item in upcoming for m in item["models"]},
                                     status=N.SUCCESS).values_list("name", flat=True).distinct())
    rows = []
    for item in upcoming:
        schedule = item["schedule"]
        predicted = item["predicted_seconds"]
        known = predicted is not None and any(m in ran for m in item["models"])  # else it is a guess of 0
        rows.append({
            **item,
            "cron_words": cron_words(schedule.cron),
            "followers": followers.get(schedule.pk, []),
            "predicted": ("under a second" if predicted < 1 else duration_words(predicted)) if known else "",
        })
    context = {"rows": rows, "time_zone": timezone.get_current_timezone_name(),
               "may_trigger": access.can(request.user, "run.trigger")}
    return render(request, "runs/next.html", context)


# --------------------------------------------------------------------------- schedules


class ScheduleForm(forms.Form):
    # The service checks names, cron lines and selections, so page, API and service say the same thing.
    name = forms.CharField(required=False, max_length=100, label="Name")
    cron = forms.CharField(required=False, max_length=100, label="Timetable (cron)")
    select = forms.CharField(required=False, max_length=500, label="Models to build")
    exclude = forms.CharField(required=False, max_length=500, label="Leave out")
    after = forms.ModelChoiceField(queryset=Schedule.objects.none(), required=False, label="Also run after",
                                   empty_label="no other schedule")
    enabled = forms.BooleanField(required=False, label="On: runs at its times")
    on_overlap = forms.ChoiceField(choices=OnOverlap.choices, label="When the previous run is still going")

    def __init__(self, *args: Any, schedule: Schedule | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        others = Schedule.objects.order_by("name")
        if schedule is not None:
            others = others.exclude(pk=schedule.pk)
        self.fields["after"].queryset = others


def _initial(schedule: Schedule | None) -> dict[str, Any]:
    if schedule is None:
        return {"enabled": True, "on_overlap": OnOverlap.SKIP}
    return {"name": schedule.name, "cron": schedule.cron, "select": schedule.select, "exclude": schedule.exclude,
            "after": schedule.after_id, "enabled": schedule.enabled, "on_overlap": schedule.on_overlap}


@page("run.view")
def schedule_list(request: HttpRequest) -> HttpResponse:
    latest = Run.objects.filter(schedule=OuterRef("pk")).order_by("-created_at", "-id")
    schedules = Schedule.objects.select_related("after").annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_run_id=Subquery(latest.values("pk")[:1]),
        last_at=Subquery(latest.values("created_at")[:1]),
    ).order_by("name")
    now = timezone.now()
    labels = dict(RunStatus.choices)
    rows = []
    for schedule in schedules:
        rows.append({
            "schedule": schedule,
            "cron_words": cron_words(schedule.cron),
            "next": runs.next_slots(schedule.cron, now)[0] if schedule.cron and schedule.enabled else None,
            "last_label": labels.get(schedule.last_status, schedule.last_status or ""),
        })
    context = {"rows": rows, "may_manage": access.can(request.user, "schedule.manage"),
               "may_trigger": access.can(request.user, "run.trigger"),
               "time_zone": timezone.get_current_timezone_name()}
    return render(request, "runs/schedules.html", context)


def _schedule_form(request: HttpRequest, schedule: Schedule | None) -> HttpResponse:
    if request.method != "POST":
        form = ScheduleForm(initial=_initial(schedule), schedule=schedule)
        return _render_schedule_form(request, schedule, form)
    form = ScheduleForm(request.POST, schedule=schedule)
    if form.is_valid():
        data = form.cleaned_data
        try:
            saved = runs.save_schedule(request.user, schedule, name=data["name"].strip(), cron=data["cron"],
                                       select=data["select"], exclude=data["exclude"], after=data["after"],
                                       enabled=data["enabled"], on_overlap=data["on_overlap"])
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except ServiceError as exc:  # shown at the field it is about; everything typed stays in the form
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Schedule “{saved.name}” is saved.")
            return redirect("schedules")
    return _render_schedule_form(request, schedule, form, status=400)


def _render_schedule_form(request: HttpRequest, schedule: Schedule | None, form: ScheduleForm,
                          status: int = 200) -> HttpResponse:
    typed_cron = form["cron"].value() or ""
    context = {"schedule": schedule, "form": form, "cron_words": cron_words(str(typed_cron)),
               "time_zone": timezone.get_current_timezone_name()}
    return render(request, "runs/schedule_form.html", context, status=status)


@page("schedule.manage", methods=("GET", "POST"))
def schedule_new(request: HttpRequest) -> HttpResponse:
    return _schedule_form(request, None)


@page("schedule.manage", methods=("GET", "POST"))
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _schedule_form(request, _schedule_or_404(pk))


@page("run.trigger", methods=("POST",))
def schedule_run(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(pk)
    try:
        run = runs.request_run(request.user, schedule=schedule)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{schedule.name}: " + _started_words(run))
        return redirect("run", pk=run.pk)
    return redirect("schedules")


# --------------------------------------------------------------------------- a model's past, now and next


CHART_HEIGHT, BAR_WIDTH, BAR_GAP = 40, 14, 4


def duration_chart(past: list[NodeRun]) -> dict[str, Any] | None:
    """The last runs' seconds as SVG bars, oldest on the left, drawn here (the page needs no script)."""
    if not past:
        return None
    shown = list(reversed(past))
    top = max((n.seconds or 0.0) for n in shown) or 1.0
    bars = []
    for i, node in enumerate(shown):
        height = max(1, round((node.seconds or 0.0) / top * CHART_HEIGHT))
        bars.append({"x": i * (BAR_WIDTH + BAR_GAP), "y": CHART_HEIGHT - height, "height": height,
                     "status": node.status, "title": f"run #{node.run_id}: {NODE_WORDS.get(node.status, node.status)}"
                     + (f", {node.seconds:.2f} s" if node.seconds is not None else "")})
    return {"bars": bars, "width": len(shown) * (BAR_WIDTH + BAR_GAP) - BAR_GAP, "height": CHART_HEIGHT,
            "bar_width": BAR_WIDTH, "top": duration_words(top)}


def model_section(user: Any, name: str) -> dict[str, Any]:
    """The model history page's "In production" section: runner.runs.model_runs, with its chart."""
    data = runs.model_runs(name)
    past = [{"node": n, "words": NODE_WORDS.get(n.status, n.status), "seconds": duration_words(n.seconds)}
            for n in data["past"]]
    return {**data, "rows": past, "chart": duration_chart(data["past"]),
            "may_see_incidents": access.can(user, "incident.view")}
