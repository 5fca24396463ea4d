"""What the API of production runs reads and writes (issue 7): schedules, runs with their nodes, what
runs next, incidents. Output serializers read runner.models' rows (and runner.runs.next_runs' dicts)
as they are; inputs are parsed here and checked again by the services (runner.runs, runner.incidents):
a cron that is not five fields, a selector that cannot be read, a schedule after itself."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from runner import runs
from runner.models import IncidentCause, IncidentStatus, NodeStatus, OnOverlap, RunStatus, Schedule

NEXT_SLOTS = 3  # how many coming slots a schedule's answer shows
MAX_NOTE = 5000

# --------------------------------------------------------------------------- schedules


class ScheduleBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ScheduleSerializer(serializers.Serializer):
    """A production run of a selection of main's models, on a cron or after another schedule's
    successful run (or both). Its beat task is `dmaas-schedule-<id>`."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    cron = serializers.CharField(allow_blank=True, help_text="minute hour day month weekday, in the portal's "
                                                             "time zone; empty: only after `after`, or by hand")
    select = serializers.CharField(allow_blank=True, help_text="dbt selection; empty: every model")
    exclude = serializers.CharField(allow_blank=True)
    after = serializers.IntegerField(source="after_id", allow_null=True,
                                     help_text="also runs each time this schedule's run succeeds")
    after_name = serializers.SerializerMethodField()
    enabled = serializers.BooleanField(help_text="false: paused, its beat task is disabled")
    on_overlap = serializers.ChoiceField(choices=OnOverlap.choices,
                                         help_text="a slot that comes while a run of the target is going")
    next = serializers.SerializerMethodField(help_text=f"the next {NEXT_SLOTS} cron slots (UTC); empty when "
                                                       "paused or without a cron")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_after_name(self, schedule: Schedule) -> str | None:
        return schedule.after.name if schedule.after_id else None

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_next(self, schedule: Schedule) -> list[str]:
        if not schedule.cron or not schedule.enabled:
            return []
        now = self.context.get("now") or timezone.now()
        field = serializers.DateTimeField()
        return [field.to_representation(slot) for slot in runs.next_slots(schedule.cron, now, NEXT_SLOTS)]


class ScheduleWriteSerializer(serializers.Serializer):
    """A schedule's settings. Creating one needs `name` and a `cron` or `after` (or both); a PATCH
    changes the settings sent, and only those."""

    name = serializers.CharField(max_length=100)
    cron = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                 help_text="five fields, e.g. `0 6 * * 1-5`; empty: only after `after`")
    select = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                   help_text="dbt selection: names, +name, name+, tag:x, path:dir")
    exclude = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    after = serializers.PrimaryKeyRelatedField(queryset=Schedule.objects.all(), required=False, allow_null=True,
                                               default=None, help_text="the id of a schedule to run after")
    enabled = serializers.BooleanField(required=False, default=True)
    on_overlap = serializers.ChoiceField(choices=OnOverlap.choices, required=False, default=OnOverlap.SKIP)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(set(sent) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"Unknown setting {', '.join(unknown)}; use {', '.join(self.fields)}."]})
        if self.partial and not attrs:
            raise serializers.ValidationError(f"Send at least one setting: {', '.join(self.fields)}.")
        return attrs


# --------------------------------------------------------------------------- runs


class RunSerializer(serializers.Serializer):
    """A production run: planned once at main's commit `sha`, its nodes run as their parents finish."""

    id = serializers.IntegerField()
    schedule = ScheduleBriefSerializer(allow_null=True, help_text="null: a run by hand of a selection")
    slot = serializers.DateTimeField(allow_null=True, help_text="the scheduled time the run is for")
    trigger = serializers.CharField(help_text="schedule, after, manual or retry")
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True)
    # Text here, the enum in RunDetailSerializer: one set of choices in two components makes drf-spectacular
    # guess names.
    status = serializers.CharField(help_text=", ".join(RunStatus.values))
    message = serializers.CharField(allow_blank=True)
    target = serializers.CharField(help_text="the production schema")
    sha = serializers.CharField(allow_blank=True, help_text="main's commit it was planned at; empty until planned")
    select = serializers.CharField(allow_blank=True)
    exclude = serializers.CharField(allow_blank=True)
    nodes_total = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.SerializerMethodField(help_text="from start to finish (so far, while it runs)")

    def get_seconds(self, run: Any) -> float | None:
        if run.started_at is None:
            return None
        end = run.finished_at or timezone.now()
        return round((end - run.started_at).total_seconds(), 1)


class NodeRunSerializer(serializers.Serializer):
    """One model, seed or test of a run."""

    unique_id = serializers.CharField()
    name = serializers.CharField()
    resource_type = serializers.CharField(help_text="model, seed or test")
    status = serializers.ChoiceField(choices=NodeStatus.choices)
    attempts = serializers.IntegerField()
    worker = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    failures = serializers.IntegerField(allow_null=True, help_text="a test's failing rows")
    message = serializers.CharField(allow_blank=True)
    error_line = serializers.IntegerField(allow_null=True, help_text="the line of the compiled SQL at fault")
    cause = serializers.CharField(allow_blank=True, help_text="skipped: the node whose failure skipped it")
    parents = serializers.ListField(child=serializers.CharField(), help_text="unique ids of its parents in this run")
    compiled_sql = serializers.CharField(required=False, help_text="only with `?sql=1`")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("sql"):
            data.pop("compiled_sql", None)
        return data


class RunDetailSerializer(RunSerializer):
    """A run with every node of it."""

    status = serializers.ChoiceField(choices=RunStatus.choices)
    nodes = NodeRunSerializer(many=True, help_text="in the order they were planned")


class RunRequestSerializer(serializers.Serializer):
    select = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                   help_text="dbt selection; empty: every model on main")
    exclude = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RunQuerySerializer(serializers.Serializer):
    schedule = serializers.IntegerField(required=False, help_text="runs of this schedule id")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    model = serializers.CharField(required=False, max_length=200, help_text="runs that built or tested this node")


class RunDetailQuerySerializer(serializers.Serializer):
    sql = serializers.BooleanField(required=False, default=False, help_text="add each node's compiled SQL")


class NextRunSerializer(serializers.Serializer):
    """An enabled schedule's next slots, the models it builds and how long they took lately."""

    schedule = ScheduleBriefSerializer()
    next = serializers.ListField(child=serializers.DateTimeField(), help_text="empty: it runs only after `after`")
    after = ScheduleBriefSerializer(allow_null=True)
    models = serializers.ListField(child=serializers.CharField())
    predicted_seconds = serializers.FloatField(allow_null=True, help_text="the sum of the models' median "
                                                                          "seconds in their last runs")


class NextQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(required=False, default=1, min_value=1, max_value=24,
                                     help_text="slots per schedule")


# --------------------------------------------------------------------------- incidents


class IncidentSerializer(serializers.Serializer):
    """Something failed in production: one per subject and cause while it is not resolved; later
    failures attach to it (`failures`, `last_failure_at`, the latest `error`)."""

    id = serializers.IntegerField()
    subject = serializers.CharField(help_text="a model's name, or `schedule:<name>`")
    cause = serializers.ChoiceField(choices=IncidentCause.choices)
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    error = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True, help_text="the model's owner")
    assignee = serializers.CharField(source="assignee.username", allow_null=True)
    failures = serializers.IntegerField()
    first_failure_at = serializers.DateTimeField()
    last_failure_at = serializers.DateTimeField()
    run = serializers.IntegerField(source="run_id", allow_null=True, help_text="the run of the first failure")
    last_run = serializers.IntegerField(source="last_run_id", allow_null=True)
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    opened_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True)
    acknowledge_note = serializers.CharField(allow_blank=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.username", allow_null=True,
                                        help_text="null for one resolved by a successful run")
    resolution = serializers.CharField(allow_blank=True)


class IncidentQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=IncidentStatus.choices, required=False)
    subject = serializers.CharField(required=False, max_length=200, help_text="a model's name, or `schedule:<name>`")
    cause = serializers.ChoiceField(choices=IncidentCause.choices, required=False)


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE,
                                 help_text="what you are doing about it")


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(allow_null=True, max_length=150,
                                     error_messages={"required": "Name the user to assign, or null to unassign."},
                                     help_text="a username; null takes the assignment away")


class ResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(allow_blank=True, max_length=MAX_NOTE,
                                       error_messages={"required": "Say what was done, so the next person knows."},
                                       help_text="what was done")

