"""The service agreement's pages (platform admins): the dashboard of a period, and the settings with the
company's closing days; and the clocks the review queue and the incident list show per row.

Views stay thin: `@page` checks the role, runner.sla.agreement.report measures the period (one call),
runner.sla.settings_service changes the settings (and audits them), and a ServiceError becomes a message
at its field. What is left here is presentation: the period chooser, amounts of working time in words
("3.5 h left", "2 h over"), week labels, and the chart data that static/sla/sla.js draws (from a
json_script element: the page carries no inline script, and its tables say the same without one).
"""

from __future__ import annotations

import datetime as dt
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from models_service.errors import NotFound, ServiceError
from portal.views.decorators import page
from runner import sla
from runner.models import ClosingDay, SlaSettings
from runner.sla import agreement, settings_service
from runner.sla.agreement import Item

STATE_WORDS = {
    "on_track": "on track", "at_risk": "at risk", "breached": "breached", "paused": "paused",
    "met": "met", "met_late": "met late",
}
KIND_WORDS = {"review": "Review", "incident": "Incident", "run": "Run", "freshness": "Model"}
SLAS = ("review", "incident", "run")
SLA_TITLES = {"review": "Reviews", "incident": "Incidents", "run": "Runs"}
OUTCOMES = ("met", "met_late", "breached")
MAX_DAYS = 93  # a quarter: run slots are measured for at most that long (runner.sla.agreement.run_items)
MAX_ATTENTION = 200  # rows of "needs attention" shown; the counts above say how many there are


# --------------------------------------------------------------------------- words


def amount_words(amount: dt.timedelta) -> str:
    """45 min, 2 h, 3.5 h: an amount of (working) time, its sign left out."""
    seconds = abs(amount.total_seconds())
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600, 1):g} h"


def clock_of(item: Item | None, *, paused: bool = False) -> dict[str, Any] | None:
    """What a row shows of an item's clock: its state and the time left or over (working time for
    reviews and incidents, wall time for runs). `paused`: the review waits on its author."""
    if item is None:
        return None
    state = "paused" if paused else item.state
    if state in ("met", "met_late") and not paused:
        words = f"{amount_words(item.left)} over" if state == "met_late" else f"in {amount_words(item.used)}"
    elif item.left >= dt.timedelta(0):
        words = f"{amount_words(item.left)} left"
    else:
        words = f"{amount_words(item.left)} over"
    return {"state": state, "label": STATE_WORDS.get(state, state), "words": words, "due": item.due,
            "finished": item.finished, "used": amount_words(item.used)}


def item_url(item: Item) -> str:
    if "change" in item.link:
        return reverse("review", kwargs={"pk": item.link["change"]})
    if "incident" in item.link:
        return reverse("incident", kwargs={"pk": item.link["incident"]})
    if "run" in item.link:
        return reverse("run", kwargs={"pk": item.link["run"]})
    return ""


def _fmt(number: float | None) -> str:
    return "" if number is None else f"{number:g}"


# --------------------------------------------------------------------------- the period


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def presets(today: dt.date) -> list[dict[str, Any]]:
    quarter = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return [
        {"key": "7d", "label": "Last 7 days", "start": today - dt.timedelta(days=6), "end": today},
        {"key": "4w", "label": "Last 4 weeks", "start": _monday(today) - dt.timedelta(weeks=4), "end": today},
        {"key": "quarter", "label": "This quarter", "start": quarter, "end": today},
    ]


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last 4 full weeks (Monday to Sunday) and this week up to today."""
    return _monday(today) - dt.timedelta(weeks=4), today


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", f"Choose a period of at most {MAX_DAYS} days (a quarter).")
        return data


def _period(request: HttpRequest, today: dt.date) -> tuple[PeriodForm, dt.date, dt.date, bool]:
    """The form, the period's first and last day (inclusive) and whether the asked period was refused."""
    first, last = default_period(today)
    if "from" not in request.GET and "to" not in request.GET:
        return PeriodForm(initial={"start": first, "end": last}), first, last, False
    form = PeriodForm({"start": request.GET.get("from", ""), "end": request.GET.get("to", "")})
    if form.is_valid():
        return form, form.cleaned_data["start"], form.cleaned_data["end"], False
    return form, first, last, True


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


# --------------------------------------------------------------------------- weeks and figures


def _week_key(when: dt.datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _week_label(key: str) -> str:
    year, week = key.split("-W")
    monday = dt.date.fromisocalendar(int(year), int(week), 1)
    return f"W{int(week)} · {monday.day} {monday:%b}"


def outcomes_by_week(items: list[Item], keys: list[str], start: dt.datetime, end: dt.datetime
                     ) -> dict[str, dict[str, int]]:
    """Met, met late and breached per ISO week, bucketed as agreement._weeks buckets attainment."""
    out = {key: dict.fromkeys(OUTCOMES, 0) for key in keys}
    for item in items:
        when = item.finished or item.due or item.started
        if item.state not in OUTCOMES or when is None or not (start <= when < end):
            continue
        out.setdefault(_week_key(when), dict.fromkeys(OUTCOMES, 0))[item.state] += 1
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """Median and p90 as agreement._hours takes them, of values already in the unit to show."""
    if not values:
        return {"median": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, int(round(0.9 * len(ordered) + 0.5)) - 1))]
    return {"median": round(median(ordered), 1), "p90": round(p90, 1)}


def weekly(data: dict[str, Any], start: dt.datetime, end: dt.datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the weekly table and the charts' data, from the report."""
    keys = sorted({w["week"] for key in SLAS for w in data[key]["weeks"]})
    attainment = {key: {w["week"]: w for w in data[key]["weeks"]} for key in SLAS}
    outcomes = {key: outcomes_by_week(data["items"][key], keys, start, end) for key in SLAS}
    keys = sorted(set(keys).union(*(o.keys() for o in outcomes.values())))
    rows = []
    for week in keys:
        cells = []
        for key in SLAS:
            w = attainment[key].get(week, {})
            counts = outcomes[key].get(week, dict.fromkeys(OUTCOMES, 0))
            cells.append({"key": key, "attainment": w.get("attainment"), "judged": w.get("items", 0), **counts})
        rows.append({"week": week, "label": _week_label(week), "cells": cells})
    chart = {
        "weeks": [row["label"] for row in rows],
        "series": [
            {"key": key, "label": SLA_TITLES[key], "target": data[key]["target"],
             "attainment": [row["cells"][i]["attainment"] for row in rows],
             **{outcome: [row["cells"][i][outcome] for row in rows] for outcome in OUTCOMES}}
            for i, key in enumerate(SLAS)
        ],
    }
    return rows, chart


def attention_rows(items: list[Item]) -> list[dict[str, Any]]:
    return [{"item": item, "kind": KIND_WORDS.get(item.kind, item.kind), "url": item_url(item),
             "clock": clock_of(item)} for item in items]


def _card(key: str, summary: dict[str, Any], promise: str) -> dict[str, Any]:
    judged = summary["met"] + summary["met_late"] + summary["breached"]
    return {"key": key, "title": SLA_TITLES[key], "promise": promise, "judged": judged, **summary,
            "counts": [("met", "Met", summary["met"]), ("met_late", "Met late", summary["met_late"]),
                       ("breached", "Breached", summary["breached"]), ("open", "Open", summary["open"]),
                       ("at_risk", "At risk", summary["at_risk"])]}


def clock_facts() -> dict[str, str]:
    holidays = settings.DMAAS_HOLIDAYS.strip()
    return {"time_zone": settings.TIME_ZONE, "days": settings.DMAAS_WORKING_DAYS,
            "hours": settings.DMAAS_WORKING_HOURS, "holidays": holidays,
            "holidays_words": f"the public holidays of {holidays}" if holidays else "no public holidays"}


# --------------------------------------------------------------------------- the dashboard


@page("sla.view")
def sla_dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    today = timezone.localdate(now)
    form, first, last, refused = _period(request, today)
    start, end = _midnight(first), _midnight(last + dt.timedelta(days=1))
    data = agreement.report(sla.clock(), start, end, now=now)
    rules: SlaSettings = data["settings"]
    runs = data["items"]["run"]
    cards = [
        _card("review", data["review"], f"A first decision within {rules.review_days:g} working days of submission "
              "(the clock pauses while the change waits on its author)."),
        _card("incident", data["incident"], f"Each incident acknowledged within {rules.incident_hours:g} working "
              "hours of opening."),
        _card("run", data["run"], f"Each scheduled run starts within {rules.run_tolerance_minutes} minutes of its "
              "time, around the clock."),
    ]
    timings = [("Time to first review", "working hours", data["review"]["time_to_first_review_hours"]),
               ("Time to acknowledge", "working hours", data["incident"]["time_to_acknowledge_hours"]),
               ("Start after the slot", "minutes late",
                _percentiles([i.used.total_seconds() / 60 for i in runs if i.finished]))]
    for card, (label, unit, figures) in zip(cards, timings, strict=True):
        card["timing"] = {"label": label, "unit": unit, "median": _fmt(figures["median"]) or None,
                          "p90": _fmt(figures["p90"]) or None}
    fresh = data["freshness"]
    stale = [{"item": i, "over": amount_words(i.used - i.allowance) if i.finished else ""} for i in fresh["stale"]]
    attention = data["attention"]
    rows, chart = weekly(data, start, end)
    presets_shown = [{**p, "current": p["start"] == first and p["end"] == last} for p in presets(today)]
    context = {
        "form": form, "refused": refused, "first": first, "last": last, "days": (last - first).days + 1,
        "presets": presets_shown, "cards": cards, "rules": rules, "at_risk_percent": round(rules.at_risk * 100),
        "attention": attention_rows(attention[:MAX_ATTENTION]), "attention_more": max(0, len(attention) - MAX_ATTENTION),
        "week_rows": rows, "chart": chart, "freshness": fresh, "stale": stale,
        "review_owners": data["review"]["owners"], "incident_owners": data["incident"]["owners"],
        "clock": clock_facts(), "closing_days": ClosingDay.objects.count(), "now": now,
    }
    return render(request, "sla/dashboard.html", context, status=400 if refused else 200)


# --------------------------------------------------------------------------- the settings


class SettingsForm(forms.Form):
    """Parsing only: the ranges are the service's (settings_service.LIMITS), so page and API agree."""

    review_days = forms.FloatField(label="Review: first decision within (working days)")
    incident_hours = forms.FloatField(label="Incident: acknowledged within (working hours)")
    run_tolerance_minutes = forms.IntegerField(label="Run: starts within (minutes of its time)")
    freshness_tolerance_minutes = forms.IntegerField(label="Freshness: beyond the schedule's period (minutes)")
    at_risk_percent = forms.FloatField(label="“At risk” once this much of the allowance is used (%)")
    review_target = forms.FloatField(label="Reviews on time (target %)")
    incident_target = forms.FloatField(label="Incidents on time (target %)")
    run_target = forms.FloatField(label="Runs on time (target %)")

    def to_service(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["at_risk"] = data.pop("at_risk_percent") / 100
        return data


HINTS = {
    "review_days": "0.5 to 30. A working day is the length of the working hours.",
    "incident_hours": "0.5 to 80.",
    "run_tolerance_minutes": "0 to 1440, in wall-clock minutes: runs are promised around the clock.",
    "freshness_tolerance_minutes": "0 to 10080. A model is fresh when its last successful build is no older than "
                                   "the hourly schedule's period plus this.",
    "at_risk_percent": "1 to 99. Items past this share of their allowance are listed as at risk.",
    "review_target": "0 to 100.", "incident_target": "0 to 100.", "run_target": "0 to 100.",
}
UNITS = {"review_days": "days", "incident_hours": "h", "run_tolerance_minutes": "min",
         "freshness_tolerance_minutes": "min", "at_risk_percent": "%", "review_target": "%",
         "incident_target": "%", "run_target": "%"}


def _initial(rules: SlaSettings) -> dict[str, str]:
    values = {k: getattr(rules, k) for k in settings_service.EDITABLE if k != "at_risk"}
    values["at_risk_percent"] = round(rules.at_risk * 100, 2)
    return {k: _fmt(v) for k, v in values.items()}


def _settings_page(request: HttpRequest, form: SettingsForm, *, status: int = 200,
                   day_typed: dict[str, str] | None = None, day_errors: dict[str, str] | None = None) -> HttpResponse:
    rules = SlaSettings.current()
    fields = [{"field": form[name], "hint": HINTS[name], "unit": UNITS[name]} for name in form.fields]
    context = {
        "form": form, "fields": fields, "rules": rules, "closing_days": list(ClosingDay.objects.all()),
        "day_typed": day_typed or {"date": "", "name": ""}, "day_errors": day_errors or {},
        "clock": clock_facts(), "today": timezone.localdate(),
    }
    return render(request, "sla/settings.html", context, status=status)


def _save_settings(request: HttpRequest) -> HttpResponse:
    rules = SlaSettings.current()
    form = SettingsForm(request.POST, initial=_initial(rules))
    if not form.is_valid():
        return _settings_page(request, form, status=400)
    before = {k: getattr(rules, k) for k in settings_service.EDITABLE}
    try:
        saved = settings_service.update_settings(request.user, source="page", **form.to_service())
    except ServiceError as exc:
        field = "at_risk_percent" if exc.field == "at_risk" else exc.field
        form.add_error(field if field in form.fields else None, exc.message)
        return _settings_page(request, form, status=400)
    if before == {k: getattr(saved, k) for k in settings_service.EDITABLE}:
        messages.info(request, "Nothing changed.")
    else:
        messages.success(request, "The service agreement's settings are saved; the dashboard and the clocks use "
                                  "them from now on.")
    return redirect("sla-settings")


def _add_day(request: HttpRequest) -> HttpResponse:
    typed = {"date": request.POST.get("date", ""), "name": request.POST.get("name", "")}
    try:
        day = settings_service.add_closing_day(request.user, typed["date"], typed["name"], source="page")
    except ServiceError as exc:
        form = SettingsForm(initial=_initial(SlaSettings.current()))
        return _settings_page(request, form, status=400, day_typed=typed,
                              day_errors={exc.field or "date": exc.message})
    messages.success(request, f"{day.date:%A %d %B %Y} is a closing day: no working time counts on it.")
    return redirect(reverse("sla-settings") + "#closing-days")


def _remove_day(request: HttpRequest) -> HttpResponse:
    try:
        settings_service.remove_closing_day(request.user, request.POST.get("pk"), source="page")
    except NotFound as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The closing day is removed: working time counts on it again.")
    return redirect(reverse("sla-settings") + "#closing-days")


@page("sla.view", methods=("GET", "POST"))
def sla_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action", "settings")
        if action == "add_day":
            return _add_day(request)
        if action == "remove_day":
            return _remove_day(request)
        return _save_settings(request)
    return _settings_page(request, SettingsForm(initial=_initial(SlaSettings.current())))
