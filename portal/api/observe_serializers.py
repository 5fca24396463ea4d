"""What the API of the data watch reads and writes (issue 9): anomalies, schema changes, measurements
and a model's sensitivity. Output serializers read runner.models' rows as they are; the settings'
input is checked by the service (runner.observe.watch), so a page and the API refuse the same things."""

from __future__ import annotations

from rest_framework import serializers

from runner.models import AnomalySeverity, MeasureKind, SchemaChangeKind
from runner.observe import anomalies


class AnomalySerializer(serializers.Serializer):
    """A measured value far from what the model's history expects at that hour and weekday."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    metric = serializers.ChoiceField(choices=sorted(anomalies.METRICS))
    column = serializers.CharField(allow_blank=True, help_text="empty for the model's own metrics")
    value = serializers.FloatField()
    expected = serializers.FloatField()
    low = serializers.FloatField(help_text="the band of normal values: below it is an anomaly")
    high = serializers.FloatField()
    score = serializers.FloatField(help_text="robust z: how many spreads (1.4826 MAD) away from the expected value")
    severity = serializers.ChoiceField(choices=AnomalySeverity.choices)
    run = serializers.IntegerField(source="run_id", allow_null=True)
    measurement = serializers.IntegerField(source="measurement_id")
    incident = serializers.IntegerField(source="incident_id", allow_null=True)
    detected_at = serializers.DateTimeField()


class AnomalyQuerySerializer(serializers.Serializer):
    model = serializers.CharField(required=False, max_length=200)
    column = serializers.CharField(required=False, max_length=200)
    metric = serializers.CharField(required=False, max_length=50, help_text=", ".join(anomalies.METRICS))
    severity = serializers.CharField(required=False, max_length=10, help_text="warning | incident")
    run = serializers.CharField(required=False, max_length=20, help_text="a run's id")


class SchemaChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    column = serializers.CharField()
    kind = serializers.CharField(help_text=" | ".join(SchemaChangeKind.values))
    old_type = serializers.CharField(allow_blank=True)
    new_type = serializers.CharField(allow_blank=True)
    run = serializers.IntegerField(source="run_id", allow_null=True)
    detected_at = serializers.DateTimeField()


class MeasurementSerializer(serializers.Serializer):
    """What one build of the model measured. `columns`: per column name, type, nulls, null_fraction,
    distinct (approximate on DuckDB), min/max (numbers, dates), mean/stddev (numbers) and top values
    ([[value, count], ...], low-cardinality text); values of confirmed personal data are masked."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    kind = serializers.CharField(help_text=" | ".join(MeasureKind.values))
    schema = serializers.CharField()
    measured_at = serializers.DateTimeField()
    rows = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True, help_text="build seconds")
    bytes = serializers.IntegerField(allow_null=True, help_text="where the warehouse reports it (PostgreSQL)")
    measure_seconds = serializers.FloatField(allow_null=True, help_text="what measuring cost")
    columns = serializers.ListField(child=serializers.DictField())
    error = serializers.CharField(allow_blank=True, help_text="why measuring failed; the build stood")
    run = serializers.IntegerField(source="run_id", allow_null=True)


class MeasurementQuerySerializer(serializers.Serializer):
    kind = serializers.CharField(required=False, default=MeasureKind.PRODUCTION, help_text="production | deploy | "
                                                                                              "ci | dev")
    limit = serializers.CharField(required=False, default="100", help_text="1 to 500, newest first")


class AnomalySettingsSerializer(serializers.Serializer):
    """The sensitivity of a model's anomaly detection: its own, or the defaults (`own` false)."""

    model = serializers.CharField()
    own = serializers.BooleanField(help_text="false: the defaults of every model apply")
    enabled = serializers.BooleanField()
    warn_score = serializers.FloatField(help_text="a score above it is a warning on the run")
    incident_score = serializers.FloatField(help_text="a score above it opens an incident")
    min_history = serializers.IntegerField(help_text="measurements needed before judging")
    updated_at = serializers.DateTimeField(allow_null=True)


class AnomalySettingsWriteSerializer(serializers.Serializer):
    """Any of the settings; those not sent keep their value (a model without its own starts from the
    defaults). Ranges are checked by the service: scores 0.5-1000, incident_score >= warn_score,
    min_history 3-1000."""

    enabled = serializers.JSONField(required=False)
    warn_score = serializers.JSONField(required=False)
    incident_score = serializers.JSONField(required=False)
    min_history = serializers.JSONField(required=False)
