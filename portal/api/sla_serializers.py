"""What the API of the service agreement reads and writes (issue 8): its settings, the closing days,
the items with their clocks (runner.sla.agreement.Item.as_dict()) and the report.

Inputs are parsed here and checked again by runner.sla.settings_service (ranges, a closing day that
exists already); outputs describe the dicts runner.sla.agreement makes, as they are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from runner.sla.settings_service import EDITABLE, MAX_NAME

KINDS = ("review", "incident", "run", "freshness")
STATES = ("on_track", "at_risk", "breached", "met", "met_late")
MAX_REPORT_DAYS = 93  # run_items looks at a quarter of hourly slots at most

# --------------------------------------------------------------------------- settings and closing days


class SlaSettingsSerializer(serializers.Serializer):
    """The allowances and targets of the service agreement (one set; platform admins change it)."""

    review_days = serializers.FloatField(help_text="working days from submission to the first decision")
    incident_hours = serializers.FloatField(help_text="working hours from opening to acknowledgement")
    run_tolerance_minutes = serializers.IntegerField(help_text="a scheduled run starts within this of its slot")
    freshness_tolerance_minutes = serializers.IntegerField(help_text="a model is fresh within its schedule's "
                                                                     "period plus this")
    at_risk = serializers.FloatField(help_text="the share of the allowance used that makes an item at risk")
    review_target = serializers.FloatField(help_text="% of reviews met on time")
    incident_target = serializers.FloatField(help_text="% of incidents acknowledged on time")
    run_target = serializers.FloatField(help_text="% of run slots started on time")
    updated_at = serializers.DateTimeField()


class SlaSettingsUpdateSerializer(serializers.Serializer):
    """Change the settings sent, and only those; runner.sla.settings_service checks their ranges."""

    review_days = serializers.FloatField(required=False, help_text="0.5 to 30 working days")
    incident_hours = serializers.FloatField(required=False, help_text="0.5 to 80 working hours")
    run_tolerance_minutes = serializers.IntegerField(required=False, help_text="0 to 1440")
    freshness_tolerance_minutes = serializers.IntegerField(required=False, help_text="0 to 10080")
    at_risk = serializers.FloatField(required=False, help_text="0.01 to 0.99")
    review_target = serializers.FloatField(required=False, help_text="0 to 100 %")
    incident_target = serializers.FloatField(required=False, help_text="0 to 100 %")
    run_target = serializers.FloatField(required=False, help_text="0 to 100 %")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(set(sent) - set(EDITABLE))
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"Unknown setting {', '.join(unknown)}; use {', '.join(EDITABLE)}."]})
        if not attrs:
            raise serializers.ValidationError(f"Send at least one setting: {', '.join(EDITABLE)}.")
        return attrs


class ClosingDaySerializer(serializers.Serializer):
    """A day the company is closed beyond the public holidays: no working time counts on it."""

    id = serializers.IntegerField()
    date = serializers.DateField()
    name = serializers.CharField(allow_blank=True)


class ClosingDayWriteSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="YYYY-MM-DD", error_messages={
        "required": "Give the date as YYYY-MM-DD, e.g. 2026-12-24.",
        "invalid": "Give the date as YYYY-MM-DD, e.g. 2026-12-24."})
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NAME)


# --------------------------------------------------------------------------- items


class ItemSerializer(serializers.Serializer):
    """One promise and its clock: a review, an incident, a run slot or a model's freshness."""

    # Text with the values in help_text, not enums: `kind` and `state` are other choice sets elsewhere,
    # and drf-spectacular would have to guess the enums' names.
    kind = serializers.CharField(help_text=" | ".join(KINDS))
    key = serializers.CharField(help_text="`change:<id>`, `incident:<id>`, `run:<schedule>:<slot>`, `model:<name>`")
    title = serializers.CharField()
    owner = serializers.CharField(allow_blank=True, help_text="the change's author, the incident's assignee "
                                                              "(else the model's owner), the model's owner")
    state = serializers.CharField(help_text=" | ".join(STATES))
    started = serializers.DateTimeField(help_text="first submission, opening, the slot, the last build")
    due = serializers.DateTimeField(allow_null=True, help_text="when the allowance runs out (open items)")
    finished = serializers.DateTimeField(allow_null=True, help_text="when the promise was met (or broken)")
    allowance_hours = serializers.FloatField(help_text="working hours (wall-clock hours for runs and freshness)")
    used_hours = serializers.FloatField()
    left_hours = serializers.FloatField(help_text="negative once breached")
    change = serializers.IntegerField(required=False, help_text="reviews: the change")
    incident = serializers.IntegerField(required=False, help_text="incidents: the incident")
    run = serializers.IntegerField(required=False, help_text="runs: the run of the slot, if there is one")


class ItemQuerySerializer(serializers.Serializer):
    kind = serializers.CharField(required=False, help_text=f"{' | '.join(KINDS)}; reviews, incidents and runs "
                                                           "if not given")
    state = serializers.CharField(required=False, help_text=" | ".join(STATES))
    days = serializers.IntegerField(required=False, default=28, min_value=1, max_value=MAX_REPORT_DAYS,
                                    help_text="items of the last N days (reviews decided, incidents answered, "
                                              "run slots), and every open one")

    def validate_kind(self, value: str) -> str:
        if value not in KINDS:
            raise serializers.ValidationError(f"{value!r} is not a kind; use {', '.join(KINDS)}.")
        return value

    def validate_state(self, value: str) -> str:
        if value not in STATES:
            raise serializers.ValidationError(f"{value!r} is not a state; use {', '.join(STATES)}.")
        return value


# --------------------------------------------------------------------------- the report


class _ReportQuery(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="the first local day (the portal's time zone); "
                                                            "default: 28 days before `end`")
    end = serializers.DateField(required=False, help_text="the day after the last one (exclusive); default: "
                                                          "tomorrow, so the last 28 days up to today")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Days far from now have no business here, and break things: before 1900 time zones had
        # local-mean-time offsets with seconds (+00:53:28), not RFC 3339 date-times; near year 9999
        # adding 28 days overflows.
        for name in ("start", "end"):
            if attrs.get(name) and not dt.date(1970, 1, 1) <= attrs[name] <= dt.date(9000, 1, 1):
                raise serializers.ValidationError({name: ["A report's days lie between 1970-01-01 and 9000-01-01."]})
        today = timezone.now().astimezone(ZoneInfo(settings.TIME_ZONE)).date()
        if attrs.get("end"):
            end = attrs["end"]
        elif attrs.get("start"):
            end = attrs["start"] + dt.timedelta(days=28)
        else:
            end = today + dt.timedelta(days=1)
        start = attrs.get("start") or end - dt.timedelta(days=28)
        if start >= end:
            raise serializers.ValidationError({"end": ["`end` is the day after the last one: it must come after "
                                                       "`start`."]})
        if (end - start).days > MAX_REPORT_DAYS:
            raise serializers.ValidationError({"start": [f"A report covers at most {MAX_REPORT_DAYS} days."]})
        return {**attrs, "start": start, "end": end}


# `?as=csv`, not `?format=csv`: DRF reads ?format= to pick a renderer (URL_FORMAT_OVERRIDE), and answers
# 404 for one the view does not have. `as` is a Python keyword, hence the class made by type().
ReportQuerySerializer = type("ReportQuerySerializer", (_ReportQuery,), {
    "as": serializers.ChoiceField(choices=("json", "csv"), required=False, default="json",
                                  help_text="`csv`: one row per SLA and week (sla, week, items, met, attainment), "
                                            "as an attachment"),
    "__module__": __name__,
})


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="the first day's local midnight")
    end = serializers.DateTimeField(help_text="exclusive")
    start_date = serializers.DateField()
    end_date = serializers.DateField(help_text="exclusive")


class DurationSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class WeekSerializer(serializers.Serializer):
    week = serializers.CharField(help_text="ISO week, e.g. 2027-W05")
    items = serializers.IntegerField(help_text="items closed (or breached) in it")
    met = serializers.IntegerField()
    attainment = serializers.FloatField(allow_null=True, help_text="% met; null for a week with none")


class OwnerSerializer(serializers.Serializer):
    owner = serializers.CharField()
    items = serializers.IntegerField()
    met = serializers.IntegerField()
    attainment = serializers.FloatField()


class SummarySerializer(serializers.Serializer):
    target = serializers.FloatField(help_text="% to meet")
    attainment = serializers.FloatField(allow_null=True, help_text="% met of those closed in the period or "
                                                                   "breached; null when there are none")
    meets_target = serializers.BooleanField()
    met = serializers.IntegerField()
    met_late = serializers.IntegerField()
    breached = serializers.IntegerField(help_text="open and over the allowance")
    open = serializers.IntegerField(help_text="on track or at risk")
    at_risk = serializers.IntegerField()
    weeks = WeekSerializer(many=True)


class ReviewSummarySerializer(SummarySerializer):
    time_to_first_review_hours = DurationSerializer(help_text="working hours")
    owners = OwnerSerializer(many=True)


class IncidentSummarySerializer(SummarySerializer):
    time_to_acknowledge_hours = DurationSerializer(help_text="working hours")
    owners = OwnerSerializer(many=True)


class RunSummarySerializer(SummarySerializer):
    punctuality_minutes = DurationSerializer(help_text="how late started runs started")


@extend_schema_serializer(component_name="SlaFreshness")  # the catalog has a Freshness of its own
class FreshnessSerializer(serializers.Serializer):
    models = serializers.IntegerField(help_text="production models")
    fresh = serializers.IntegerField()
    stale = ItemSerializer(many=True)


class ReportSerializer(serializers.Serializer):
    """The SLA dashboard for a period: attainment per SLA, counts, durations, weeks, owners, freshness,
    and what needs attention now (breached first)."""

    period = PeriodSerializer()
    settings = SlaSettingsSerializer()
    review = ReviewSummarySerializer()
    incident = IncidentSummarySerializer()
    run = RunSummarySerializer()
    freshness = FreshnessSerializer()
    attention = ItemSerializer(many=True, help_text="at risk or breached now")
