"""What people read of the data watch and how admins tune it: the one service the pages and the API call.

- Reading (`incident.view`: analysts, reviewers, admins): anomalies with filters, schema changes, a
  model's sensitivity. A model's measurements are catalog information (`catalog.view`), but their
  values (top values, min/max, mean) of columns confirmed as personal data are masked for people
  without `pii.view`, as every other read of a model's values is (runner/observe/pii.py).
- Tuning (`anomaly.manage`: platform admins): a model's own sensitivity, or the defaults of every
  model (model ""), audited. Checked here, so pages and API agree.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from models_service import access, audit
from models_service.errors import InvalidInput, NotFound
from models_service.models import IndexedNode
from runner.models import (
    MEASURE_COMPLETE,
    Anomaly,
    AnomalySettings,
    AnomalySeverity,
    MeasureKind,
    Measurement,
    SchemaChange,
)

from . import anomalies, record

FIELDS = ("enabled", "warn_score", "incident_score", "min_history")
MAX_SCORE = 1000.0
MAX_MIN_HISTORY = 1000
MAX_MEASUREMENTS = 500
MASK = "•••"
VALUE_KEYS = ("top", "min", "max", "mean", "stddev")


def require_model(model: str, *, defaults_ok: bool = False) -> str:
    """`model` names a model on main (or one with measurements); "" is the defaults where allowed."""
    name = str(model or "").strip()
    if not name and defaults_ok:
        return ""
    known = IndexedNode.objects.filter(ref="main", kind__in=("model", "seed"), name=name).exists()
    if not name or not (known or Measurement.objects.filter(model=name).exists()):
        raise NotFound(f"There is no model {name!r} on main.")
    return name


# --------------------------------------------------------------------------- sensitivity


def settings_of(user: Any, model: str) -> dict[str, Any]:
    """The sensitivity that applies to `model` ("" the defaults), and whether it is the model's own."""
    access.require(user, "incident.view")
    name = require_model(model, defaults_ok=True)
    conf = record.settings_for(name)
    return as_dict(conf, name)


def as_dict(conf: AnomalySettings, model: str) -> dict[str, Any]:
    return {"model": model, "own": bool(conf.pk) and conf.model == model, "enabled": conf.enabled,
            "warn_score": conf.warn_score, "incident_score": conf.incident_score, "min_history": conf.min_history,
            "updated_at": conf.updated_at if conf.pk else None}


def _number(fields: dict[str, Any], key: str, low: float, high: float, *, integer: bool = False) -> None:
    if key not in fields:
        return
    value = fields[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise InvalidInput(f"{key} must be {kind}, not {value!r}.", field=key) from None
    if not low <= number <= high:
        raise InvalidInput(f"{key} must be between {low:g} and {high:g}; {number:g} is not.", field=key)
    fields[key] = number


def validate(fields: dict[str, Any], current: AnomalySettings) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown settings: {', '.join(unknown)}. Known: {', '.join(FIELDS)}.", field=unknown[0])
    fields = dict(fields)
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise InvalidInput("enabled must be true or false.", field="enabled")
    _number(fields, "warn_score", 0.5, MAX_SCORE)
    _number(fields, "incident_score", 0.5, MAX_SCORE)
    _number(fields, "min_history", 3, MAX_MIN_HISTORY, integer=True)
    warn = fields.get("warn_score", current.warn_score)
    incident = fields.get("incident_score", current.incident_score)
    if incident < warn:
        raise InvalidInput(f"incident_score ({incident:g}) must not be below warn_score ({warn:g}): an incident is "
                           "a stronger anomaly than a warning.", field="incident_score")
    return fields


def save_settings(user: Any, model: str, fields: dict[str, Any], *, source: str = "page") -> dict[str, Any]:
    """Set the model's own sensitivity (its other settings start from the defaults); model "" sets
    the defaults of every model without settings of its own."""
    access.require(user, "anomaly.manage")
    name = require_model(model, defaults_ok=True)
    current = record.settings_for(name)
    fields = validate(fields, current)
    conf = AnomalySettings.objects.filter(model=name).first() or AnomalySettings(
        model=name, **{key: getattr(current, key) for key in FIELDS})
    for key, value in fields.items():
        setattr(conf, key, value)
    conf.save()
    audit.record(user, "anomaly.settings", conf, source=source, details={"model": name, **fields})
    return as_dict(conf, name)


# --------------------------------------------------------------------------- reading


def list_anomalies(user: Any, *, model: str = "", metric: str = "", column: str = "", severity: str = "",
                   run: Any = None) -> QuerySet[Anomaly]:
    """Anomalies, newest first, filtered; a filter that cannot match anything is a 400 that says why."""
    access.require(user, "incident.view")
    rows = Anomaly.objects.select_related("incident")
    if severity:
        if severity not in AnomalySeverity.values:
            raise InvalidInput(f"severity is one of {', '.join(AnomalySeverity.values)}, not {severity!r}.",
                               field="severity")
        rows = rows.filter(severity=severity)
    if metric:
        if metric not in anomalies.METRICS:
            raise InvalidInput(f"metric is one of {', '.join(anomalies.METRICS)}, not {metric!r}.", field="metric")
        rows = rows.filter(metric=metric)
    if run not in (None, ""):
        try:
            rows = rows.filter(run_id=int(run))
        except (TypeError, ValueError):
            raise InvalidInput(f"run is a run's number, not {run!r}.", field="run") from None
    if model:
        rows = rows.filter(model=model)
    if column:
        rows = rows.filter(column=column)
    return rows.order_by("-detected_at", "-id")


def list_schema_changes(user: Any, *, model: str = "") -> QuerySet[SchemaChange]:
    access.require(user, "incident.view")
    rows = SchemaChange.objects.all()
    if model:
        rows = rows.filter(model=model)
    return rows.order_by("-detected_at", "-id")


def measurements(user: Any, model: str, *, kind: str = MeasureKind.PRODUCTION, limit: Any = 100
                 ) -> list[Measurement]:
    """The model's newest measurements of one kind, newest first, with personal data masked."""
    access.require(user, "catalog.view")
    name = require_model(model)
    if kind not in MeasureKind.values:
        raise InvalidInput(f"kind is one of {', '.join(MeasureKind.values)}, not {kind!r}.", field="kind")
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise InvalidInput(f"limit is a number of measurements, not {limit!r}.", field="limit") from None
    if not 1 <= limit <= MAX_MEASUREMENTS:
        raise InvalidInput(f"limit must be between 1 and {MAX_MEASUREMENTS}.", field="limit")
    rows = list(Measurement.objects.filter(MEASURE_COMPLETE, model=name, kind=kind).order_by("-measured_at", "-id")[:limit])
    mask(user, name, rows)
    return rows


def mask(user: Any, model: str, rows: list[Measurement]) -> None:
    """Hide the values of confirmed personal-data columns from people without `pii.view` (in place)."""
    if access.can(user, "pii.view"):
        return
    from .pii import confirmed_columns

    hidden = confirmed_columns(model)
    if not hidden:
        return
    for row in rows:
        row.columns = [{**c, **{k: MASK for k in VALUE_KEYS if k in c}} if str(c.get("name", "")).lower() in hidden
                       else c for c in row.columns]
