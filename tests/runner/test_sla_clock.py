"""The business-hours clock (issue 8, item 1): its edges, and its laws as properties (Hypothesis)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.sla.clock import Clock, parse_days, parse_holidays, parse_hours

BERLIN = ZoneInfo("Europe/Berlin")
CLOCK = Clock(zone="Europe/Berlin", country="DE", subdivision="BE")
H = dt.timedelta(hours=1)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def test_four_working_hours_from_friday_1659_end_on_monday_at_1259():
    assert CLOCK.add(at(2026, 11, 27, 16, 59), 4 * H) == at(2026, 11, 30, 12, 59)


def test_time_outside_hours_starts_at_the_next_opening():
    assert CLOCK.add(at(2026, 11, 30, 7, 0), 2 * H) == at(2026, 11, 30, 11, 0)
    assert CLOCK.add(at(2026, 11, 30, 18, 0), 2 * H) == at(2026, 12, 1, 11, 0)
    assert CLOCK.add(at(2026, 11, 28, 12, 0), dt.timedelta(0)) == at(2026, 11, 30, 9, 0)  # Saturday


def test_public_holidays_and_closing_days_do_not_count():
    # 25 and 26 December 2026 are a Friday and Saturday; Christmas Eve is a working Thursday.
    assert CLOCK.add(at(2026, 12, 24, 16, 0), 2 * H) == at(2026, 12, 28, 10, 0)
    # Berlin's International Women's Day (8 March 2027, a Monday) is a holiday there, not in Bavaria.
    assert CLOCK.add(at(2027, 3, 5, 16, 0), 2 * H) == at(2027, 3, 9, 10, 0)
    bavaria = Clock(zone="Europe/Berlin", country="DE", subdivision="BY")
    assert bavaria.add(at(2027, 3, 5, 16, 0), 2 * H) == at(2027, 3, 8, 10, 0)
    closed = Clock(zone="Europe/Berlin", closed=frozenset({dt.date(2026, 11, 30)}))
    assert closed.add(at(2026, 11, 27, 16, 0), 2 * H) == at(2026, 12, 1, 10, 0)


def test_a_dst_change_keeps_the_working_day_eight_hours():
    # Europe/Berlin goes to summer time on Sunday 29 March 2026 and back on Sunday 25 October 2026.
    assert CLOCK.between(at(2026, 3, 27, 9, 0), at(2026, 3, 31, 9, 0)) == 16 * H
    assert CLOCK.add(at(2026, 10, 23, 13, 0), 8 * H) == at(2026, 10, 26, 13, 0)
    assert CLOCK.window(dt.date(2026, 10, 26))[0] == dt.datetime(2026, 10, 26, 8, 0, tzinfo=dt.UTC)
    assert CLOCK.window(dt.date(2026, 10, 23))[0] == dt.datetime(2026, 10, 23, 7, 0, tzinfo=dt.UTC)


def test_three_working_days_are_twenty_four_working_hours():
    assert CLOCK.add(at(2026, 12, 1, 10, 0), CLOCK.working_days(3)) == at(2026, 12, 4, 10, 0)
    assert CLOCK.between(at(2026, 12, 4, 10, 0), at(2026, 12, 9, 10, 0)) == CLOCK.working_days(3)


def test_between_ignores_the_order_of_its_ends_and_naive_times_are_refused():
    assert CLOCK.between(at(2026, 12, 2), at(2026, 12, 1)) == dt.timedelta(0)
    with pytest.raises(ValueError, match="aware"):
        CLOCK.add(dt.datetime(2026, 12, 1, 10), H)  # noqa: DTZ001 - the point of the test


def test_the_settings_are_read_in_plain_words():
    assert parse_days("mon-fri") == frozenset(range(5)) and parse_days("sun-tue") == frozenset({6, 0, 1})
    assert parse_hours("08:30-16:30") == (dt.time(8, 30), dt.time(16, 30))
    assert parse_holidays("de-be") == ("DE", "BE")
    for bad, call in (("someday", parse_days), ("9-5pm", parse_hours), ("17:00-09:00", parse_hours),
                      ("XX", parse_holidays)):
        with pytest.raises(ValueError):
            call(bad)


instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31),
                        timezones=st.just(dt.UTC))
amounts = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=40))


@settings(max_examples=300, deadline=None)
@given(instants, amounts)
def test_adding_then_measuring_gives_back_the_amount(start, amount):
    assert CLOCK.between(start, CLOCK.add(start, amount)) == amount


@settings(max_examples=200, deadline=None)
@given(instants, amounts, amounts)
def test_adding_is_monotonic(start, a, b):
    small, large = sorted((a, b))
    assert CLOCK.add(start, small) <= CLOCK.add(start, large)


@settings(max_examples=200, deadline=None)
@given(instants, instants, instants)
def test_working_time_adds_up_over_a_split(a, b, c):
    a, b, c = sorted((a, b, c))
    assert CLOCK.between(a, c) == CLOCK.between(a, b) + CLOCK.between(b, c)


@settings(max_examples=200, deadline=None)
@given(instants, st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=200)))
def test_outside_hours_time_never_counts(start, span):
    local = start.astimezone(BERLIN)
    night_start = local.replace(hour=17, minute=0, second=0, microsecond=0)
    next_morning = (night_start + dt.timedelta(days=1)).replace(hour=9)
    assert CLOCK.between(night_start, next_morning) == dt.timedelta(0)
    assert CLOCK.between(start, start + span) <= span
