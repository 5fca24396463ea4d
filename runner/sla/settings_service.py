"""Changing the service agreement: its allowances and targets (the SlaSettings row) and the company's
closing days. Platform admins only (the `sla.view` action); pages and the API call these, and every
change lands in the audit log.

- `update_settings(user, **fields)`: any of EDITABLE, in the model's units (review_days working days,
  incident_hours working hours, the tolerances in minutes, at_risk a share of the allowance from 0.01
  to 0.99, the targets in %). Only what differs is saved and audited ("sla.settings").
- `add_closing_day(user, date, name)`: a date (or "YYYY-MM-DD") the company is closed: no working time.
- `remove_closing_day(user, pk)`.

A bad value raises InvalidInput naming its field; nothing is written then. Each also takes `source`
("page", "api", ...) for the audit entry.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db import IntegrityError, transaction

from models_service import access, audit
from models_service.errors import InvalidInput, NotFound

from ..models import ClosingDay, SlaSettings

ACTION = "sla.view"
# field -> (kind, lowest, highest, what it is, unit shown in messages)
LIMITS: dict[str, tuple[type, float, float, str, str]] = {
    "review_days": (float, 0.5, 30, "The review allowance", "working days"),
    "incident_hours": (float, 0.5, 80, "The incident allowance", "working hours"),
    "run_tolerance_minutes": (int, 0, 1440, "The run tolerance", "minutes"),
    "freshness_tolerance_minutes": (int, 0, 7 * 1440, "The freshness tolerance", "minutes"),
    "at_risk": (float, 0.01, 0.99, "“At risk”", "of the allowance"),
    "review_target": (float, 0, 100, "The review target", "%"),
    "incident_target": (float, 0, 100, "The incident target", "%"),
    "run_target": (float, 0, 100, "The run target", "%"),
}
EDITABLE = tuple(LIMITS)
MAX_NAME = 100


def _number(field: str, value: Any) -> float | int:
    kind, low, high, what, unit = LIMITS[field]
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInput(f"{what} is required: a number.", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number.", field=field) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be a number.", field=field)
    if kind is int:
        if number != int(number):
            raise InvalidInput(f"{what} is a whole number of {unit}.", field=field)
        number = int(number)
    if not low <= number <= high:
        if field == "at_risk":
            raise InvalidInput("“At risk” is a share of the allowance from 1 % to 99 % (0.01 to 0.99).", field=field)
        shown = f"{low:g} to {high:g} {unit}" if unit != "%" else f"{low:g} to {high:g} %"
        raise InvalidInput(f"{what} must be from {shown}.", field=field)
    return number


def update_settings(user: Any, *, source: str = "page", **fields: Any) -> SlaSettings:
    """Change some of the agreement's allowances and targets; the change is audited."""
    access.require(user, ACTION)
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"Unknown setting {', '.join(unknown)}; use {', '.join(EDITABLE)}.", field=unknown[0])
    wanted = {field: _number(field, value) for field, value in fields.items()}
    with transaction.atomic():
        SlaSettings.current()
        rules = SlaSettings.objects.select_for_update().get(pk=1)
        before = {k: getattr(rules, k) for k in wanted if getattr(rules, k) != wanted[k]}
        if not before:
            return rules
        after = {k: wanted[k] for k in before}
        for key, value in after.items():
            setattr(rules, key, value)
        rules.save()
        audit.record(user, "sla.settings", rules, source=source, details={"before": before, "after": after})
    return rules


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidInput("Give a date without a time.", field="date")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise InvalidInput("Give the date as YYYY-MM-DD, e.g. 2026-12-24.", field="date") from None


def add_closing_day(user: Any, date: Any, name: str = "", *, source: str = "page") -> ClosingDay:
    """A day the company is closed beyond the public holidays: no working time counts on it."""
    access.require(user, ACTION)
    day = _date(date)
    name = str(name or "").strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"A closing day's name has at most {MAX_NAME} characters.", field="name")
    try:
        with transaction.atomic():
            closing = ClosingDay.objects.create(date=day, name=name)
    except IntegrityError:
        raise InvalidInput(f"{day:%Y-%m-%d} is a closing day already.", field="date") from None
    audit.record(user, "sla.closing_day.add", closing, source=source,
                 details={"date": day.isoformat(), "name": name})
    return closing


def remove_closing_day(user: Any, pk: Any, *, source: str = "page") -> None:
    """Working time counts on that day again (unless it is a public holiday or not a working day)."""
    access.require(user, ACTION)
    try:
        closing = ClosingDay.objects.get(pk=int(pk))
    except (ClosingDay.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no closing day {pk}.") from None
    details = {"date": closing.date.isoformat(), "name": closing.name}
    label = str(closing)
    closing_pk = closing.pk
    closing.delete()
    audit.record(user, "sla.closing_day.remove", None, source=source, details=details,
                 object_type="closingday", object_id=str(closing_pk), object_repr=label)
