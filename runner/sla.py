"""The service agreement's clock. For now the review due time: 3 working days (Monday to Friday, in
the company's time zone) after submission. The business-hours clock with public holidays and pauses
replaces this in the service-agreement issue; every caller goes through `review_due`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings

REVIEW_WORKING_DAYS = 3


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """`start` moved on by `days` working days, at the same time of day; a weekend start counts from
    the next Monday's start of business (9:00)."""
    local = start.astimezone(_zone())
    if local.weekday() >= 5:
        while local.weekday() >= 5:
            local = (local + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    added = 0
    while added < days:
        local = local + dt.timedelta(days=1)
        if local.weekday() < 5:
            added += 1
    return local.astimezone(dt.UTC)


def review_due(submitted_at: dt.datetime | None) -> dt.datetime | None:
    return add_working_days(submitted_at, REVIEW_WORKING_DAYS) if submitted_at else None
