"""The service agreement: reviews within 3 working days, incidents acknowledged within 4 working hours,
hourly runs on time and models fresh (runner/sla/agreement.py), all measured with one business-hours
clock (runner/sla/clock.py) made from the settings and the closing days.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from .clock import Clock, parse_days, parse_holidays, parse_hours


def clock() -> Clock:
    """The company's clock: DMAAS_WORKING_DAYS/HOURS, DMAAS_HOLIDAYS, TIME_ZONE and the closing days."""
    from runner.models import ClosingDay

    start, end = parse_hours(settings.DMAAS_WORKING_HOURS)
    country, subdivision = parse_holidays(settings.DMAAS_HOLIDAYS)
    closed = frozenset(ClosingDay.objects.values_list("date", flat=True))
    return Clock(zone=settings.TIME_ZONE, days=parse_days(settings.DMAAS_WORKING_DAYS), start=start, end=end,
                 country=country, subdivision=subdivision, closed=closed)


def review_due(submitted_at: dt.datetime | None) -> dt.datetime | None:
    """When a review submitted at `submitted_at` is due (not counting pauses: see agreement.py)."""
    if not submitted_at:
        return None
    from runner.models import SlaSettings

    c = clock()
    return c.add(submitted_at, c.working_days(SlaSettings.current().review_days))


__all__ = ["Clock", "clock", "review_due"]
