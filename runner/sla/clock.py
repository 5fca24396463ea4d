"""The business-hours clock every SLA is measured with: working days and hours in the company's time
zone, minus public holidays (the `holidays` package, for a country and subdivision) and the company's
own closing days.

`add(instant, amount)` is the instant after `amount` of working time from `instant`; `between(a, b)`
is the working time from a to b. Days are walked in local time and each day's working window is made
from local wall-clock times, so a DST change shifts the window with the clock on the wall (a 9:00-17:00
day stays 8 hours). Time outside the windows never counts; `add` from outside the hours starts at the
next window. Plain Python: no Django, so the laws are property-tested directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

MAX_DAYS = 3660  # ten years: a clock with no working day at all fails instead of looping


@dataclass(frozen=True)
class Clock:
    zone: str = "Europe/Berlin"
    days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    country: str = ""
    subdivision: str = ""
    closed: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("the working day must start before it ends")
        if not self.days:
            raise ValueError("at least one working day a week")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def day_length(self) -> dt.timedelta:
        return dt.datetime.combine(dt.date.min, self.end) - dt.datetime.combine(dt.date.min, self.start)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() in self.days and day not in self.closed and day not in _holidays(
            self.country, self.subdivision, day.year)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working window of a local date, as aware UTC instants; None on a day off."""
        if not self.is_working_day(day):
            return None
        tz = self.tz
        open_at = dt.datetime.combine(day, self.start, tzinfo=tz).astimezone(dt.UTC)
        close_at = dt.datetime.combine(day, self.end, tzinfo=tz).astimezone(dt.UTC)
        return open_at, close_at

    def _days_from(self, instant: dt.datetime) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        day = instant.astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            w = self.window(day)
            if w is not None:
                yield w
            day += dt.timedelta(days=1)
        raise ValueError("no working time in ten years: check the working days and closing days")

    def add(self, instant: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The instant `amount` of working time after `instant` (amount >= 0)."""
        _aware(instant)
        if amount < dt.timedelta(0):
            raise ValueError("add a positive amount of working time")
        left = amount
        for open_at, close_at in self._days_from(instant):
            begin = max(open_at, instant)
            if begin >= close_at:
                continue
            if left == dt.timedelta(0):
                return begin if instant < open_at else instant
            available = close_at - begin
            if left <= available:
                return begin + left
            left -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        """Working time from a to b (zero when b is not after a)."""
        _aware(a)
        _aware(b)
        if b <= a:
            return dt.timedelta(0)
        total = dt.timedelta(0)
        for open_at, close_at in self._days_from(a):
            if open_at >= b:
                break
            overlap = min(close_at, b) - max(open_at, a)
            if overlap > dt.timedelta(0):
                total += overlap
        return total

    def working_days(self, n: float) -> dt.timedelta:
        """n working days as working time (a day is the length of the working window)."""
        return self.day_length * n


def _aware(instant: dt.datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("the clock takes aware datetimes only")


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str, year: int) -> frozenset[dt.date]:
    if not country:
        return frozenset()
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision or None, years=year).keys())


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> frozenset[int]:
    """'mon-fri', 'mon,tue,thu', 'sun-thu' -> weekday numbers; ValueError in plain words."""
    days: set[int] = set()
    for part in str(text).lower().replace(" ", "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{text!r}: name days as mon..sun, e.g. 'mon-fri' or 'mon,wed,fri'")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        days |= {(a + i) % 7 for i in range((b - a) % 7 + 1)}
    if not days:
        raise ValueError(f"{text!r}: at least one working day")
    return frozenset(days)


def parse_hours(text: str) -> tuple[dt.time, dt.time]:
    """'09:00-17:00' -> (9:00, 17:00)."""
    try:
        a, b = str(text).replace(" ", "").split("-")
        start, end = dt.time.fromisoformat(a), dt.time.fromisoformat(b)
    except ValueError:
        raise ValueError(f"{text!r}: write working hours as 09:00-17:00") from None
    if not start < end:
        raise ValueError(f"{text!r}: the working day must start before it ends")
    return start, end


def parse_holidays(text: str) -> tuple[str, str]:
    """'DE' or 'DE-BE' (country and subdivision of the `holidays` package); '' for none."""
    text = str(text).strip()
    if not text:
        return "", ""
    country, _, subdivision = text.partition("-")
    import holidays

    try:
        holidays.country_holidays(country.upper(), subdiv=subdivision.upper() or None, years=2026)
    except (NotImplementedError, KeyError, ValueError) as err:
        raise ValueError(f"{text!r}: not a country (and subdivision) the holidays package knows: {err}") from None
    return country.upper(), subdivision.upper()
