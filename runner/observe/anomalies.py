"""Is this measurement far from what the model's history expects? Pure functions over series.

A series is the history of one metric of one model (its row count, a column's null fraction, ...)
as `Point`s. `judge(metric, value, at, history, ...)` answers a `Verdict`: the expected value, the
band around it and a robust score; `anomalous` when the score passes `warn_score` AND the change is
big enough to matter (below).

Seasonality. Data have a rhythm: more orders on weekday afternoons, a Monday peak after the weekend,
a quiet Sunday night. So the history is cut into buckets and the most specific bucket with enough
points decides: the same hour of the same weekday (a normal Monday 9:00 is compared with earlier
Mondays at 9:00), else the same hour of any day, else all of it (a young model). Hours and weekdays
are those of the company's time zone, given as `zone`.

Robustness. Medians, not means: expected = the bucket's median, moved along the bucket's own trend
(a table that grows 1 % a day is not an anomaly), with the trend measured as the difference between
the medians of the bucket's older and newer halves; spread = 1.4826 * MAD of the residuals. An
earlier failure in the history barely moves either. Points that were themselves anomalies are left
out (`Point.flagged`), so a load that stays broken keeps being reported, unless they are most of the
recent points: then they are the new normal and are learnt.

Counts (rows, distinct values, build seconds) are judged on a log scale, so that "a tenth of the
rows" is the same size of change for a table of 10 000 rows as for one of 10 million; fractions and
column values on their own scale.

Guards, so a quiet series does not fire on nothing: the spread has a floor (SIGMA_FLOOR: 1 % of the
level on a log scale), and a change must also be at least `min_relative` of the expected value and
`min_absolute` in the metric's unit (METRICS) — a constant table that gains 3 rows, a null fraction
from 0 to 0.1 %, a build from 0.2 s to 0.5 s are not anomalies.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

MAD_TO_SIGMA = 1.4826
MIN_BUCKET = 4  # points a seasonal bucket needs before it decides
RECENT = 24  # the newest points: a young model's history, and the "new normal" check
SEASON_WEEKS = 8  # how far back the same-hour buckets look
MAX_BUCKET = 56  # newest points of a bucket used
MIN_TREND = 8  # points a bucket needs before its trend is followed


@dataclass(frozen=True)
class Metric:
    log: bool  # judged on log1p(value): counts
    min_relative: float  # |value - expected| must be at least this share of |expected|
    min_absolute: float  # ... and at least this, in the metric's unit
    sigma_floor: float  # the spread's floor: on the log scale, or as a share of |expected|


METRICS: dict[str, Metric] = {
    "row_count": Metric(log=True, min_relative=0.05, min_absolute=10, sigma_floor=0.01),
    "build_seconds": Metric(log=True, min_relative=0.5, min_absolute=30, sigma_floor=0.05),
    "null_fraction": Metric(log=False, min_relative=0.0, min_absolute=0.02, sigma_floor=0.0),
    "distinct": Metric(log=True, min_relative=0.1, min_absolute=3, sigma_floor=0.02),
    "mean": Metric(log=False, min_relative=0.05, min_absolute=0.0, sigma_floor=0.01),
    "stddev": Metric(log=False, min_relative=0.1, min_absolute=0.0, sigma_floor=0.02),
    "min": Metric(log=False, min_relative=0.1, min_absolute=0.0, sigma_floor=0.01),
    "max": Metric(log=False, min_relative=0.1, min_absolute=0.0, sigma_floor=0.01),
}
NULL_FRACTION_SIGMA_FLOOR = 0.005  # absolute: fractions live in 0..1
COLUMN_METRICS = ("null_fraction", "distinct", "mean", "stddev", "min", "max")


@dataclass(frozen=True)
class Point:
    at: dt.datetime  # aware
    value: float
    flagged: bool = False  # this point was an anomaly itself


@dataclass(frozen=True)
class Verdict:
    metric: str
    value: float
    expected: float
    low: float
    high: float
    score: float  # robust z; positive above the expected value
    bucket: str  # weekday_hour | hour | all
    history: int  # points the bucket held
    anomalous: bool

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "expected": self.expected, "low": self.low,
                "high": self.high, "score": self.score, "bucket": self.bucket, "history": self.history,
                "anomalous": self.anomalous}


# --------------------------------------------------------------------------- helpers


def _forward(metric: Metric, value: float) -> float:
    return math.log1p(max(value, 0.0)) if metric.log else value


def _back(metric: Metric, value: float) -> float:
    return math.expm1(value) if metric.log else value


def _hours(at: dt.datetime) -> float:
    return at.timestamp() / 3600.0


def usable(history: Sequence[Point]) -> list[Point]:
    """The history without its anomalies, unless those are most of the recent points (the new normal)."""
    recent = sorted(history, key=lambda p: p.at)[-RECENT:]
    if recent and sum(p.flagged for p in recent) * 2 > len(recent):
        return list(history)
    return [p for p in history if not p.flagged]


@functools.lru_cache(maxsize=8192)
def slot(at: dt.datetime, zone: dt.tzinfo) -> tuple[int, int]:
    """(weekday, hour) of `at` in the company's zone; cached, as every metric of a model shares its
    measurements' times."""
    local = at.astimezone(zone)
    return local.weekday(), local.hour


def bucket_of(history: Sequence[Point], at: dt.datetime, zone: dt.tzinfo
              ) -> tuple[str, list[Point], list[list[Point]]]:
    """The most specific seasonal bucket of `at` with MIN_BUCKET points: same weekday and hour, same
    hour, else everything (newest MAX_BUCKET points of it). Also the groups its noise is pooled from:
    for the weekday-and-hour bucket, the same hour of every weekday (seven times the points, so a
    thin bucket that happens to be quiet does not make the detector jumpy)."""
    weekday, hour = slot(at, zone)
    since = at - dt.timedelta(weeks=SEASON_WEEKS)
    same_hour = sorted((p for p in history if p.at >= since and slot(p.at, zone)[1] == hour), key=lambda p: p.at)
    by_day: dict[int, list[Point]] = {}
    for p in same_hour:
        by_day.setdefault(slot(p.at, zone)[0], []).append(p)
    same_day = by_day.get(weekday, [])
    if len(same_day) >= MIN_BUCKET:
        return "weekday_hour", same_day[-MAX_BUCKET:], [g for g in by_day.values() if len(g) >= MIN_BUCKET]
    if len(same_hour) >= MIN_BUCKET:
        return "hour", same_hour[-MAX_BUCKET:], [same_hour[-MAX_BUCKET:]]
    everything = sorted(history, key=lambda p: p.at)[-MAX_BUCKET:]
    return "all", everything, [everything]


@functools.lru_cache(maxsize=256)
def _shape(at: dt.datetime, zone: dt.tzinfo, marks: tuple[tuple[dt.datetime, bool], ...]
           ) -> tuple[int, str, tuple[int, ...], tuple[tuple[int, ...], ...], tuple[float, ...]]:
    """`usable` and `bucket_of` of a history given by its points' (time, flagged), as positions in it,
    and each point's time in hours: they depend on nothing else, and every metric of a measurement
    shares its history's times, so a model's fifty metrics pay for them once."""
    stand_ins = [Point(t, float(i), flagged) for i, (t, flagged) in enumerate(marks)]
    points = usable(stand_ins)
    bucket, chosen, groups = bucket_of(points, at, zone)
    return (len(points), bucket, tuple(int(p.value) for p in chosen),
            tuple(tuple(int(p.value) for p in group) for group in groups), tuple(_hours(t) for t, _ in marks))


def fit(pairs: Sequence[tuple[float, float]], slope: float | None = None) -> tuple[float, float, list[float]]:
    """(slope, intercept, residuals) of (hours, value on the metric's scale) pairs in time order: the
    trend given, else the pairs' own when they are MIN_TREND, else none (their median)."""
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    if slope is None:
        slope, intercept = robust_line(xs, ys) if len(pairs) >= MIN_TREND else (0.0, median(ys))
    else:
        intercept = median(y - slope * x for x, y in pairs)
    residuals = [y - (intercept + slope * x) for x, y in pairs]
    centre = median(residuals)
    return slope, intercept + centre, [r - centre for r in residuals]


def mad_sigma(residuals: Sequence[float]) -> float:
    return MAD_TO_SIGMA * median(abs(r) for r in residuals) if residuals else 0.0


def robust_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) through the medians of the older and the newer half: a trend that one
    outlying point cannot tilt (slope 0 for fewer than 4 points)."""
    n = len(xs)
    if n < 4:
        return 0.0, median(ys)
    half = n // 2
    x1, x2 = median(xs[:half]), median(xs[n - half:])
    y1, y2 = median(ys[:half]), median(ys[n - half:])
    slope = (y2 - y1) / (x2 - x1) if x2 - x1 >= 1.0 else 0.0  # halves an hour apart at least
    intercept = median(y - slope * x for x, y in zip(xs, ys, strict=True))
    return slope, intercept


# --------------------------------------------------------------------------- the verdict


def judge(metric_name: str, value: float, at: dt.datetime, history: Iterable[Point], *, zone: dt.tzinfo,
          warn_score: float = 4.0, min_history: int = 8) -> Verdict | None:
    """The verdict on `value` measured at `at`, or None when the history is too short to judge."""
    metric = METRICS[metric_name]
    finite = [p for p in history if p.at < at and math.isfinite(p.value)]
    count, bucket, chosen, groups, hours = _shape(at, zone, tuple((p.at, p.flagged) for p in finite))
    if count < max(min_history, 3):
        return None
    xy = {i: (hours[i], _forward(metric, finite[i].value)) for g in (chosen, *groups) for i in g}

    def pairs(group: Sequence[int]) -> list[tuple[float, float]]:
        return [xy[i] for i in group]

    trend = None
    if len(groups) > 1:  # a weekday's few points: the trend of the same hour on every day
        trend = fit(sorted(pair for g in groups for pair in pairs(g)))[0]
    slope, intercept, residuals = fit(pairs(chosen), trend)
    pooled = [r for group in groups for r in fit(pairs(group), slope)[2]]
    expected_t = intercept + slope * _hours(at)
    expected = _back(metric, expected_t)
    if metric.log:
        floor = metric.sigma_floor
    elif metric_name == "null_fraction":
        floor = NULL_FRACTION_SIGMA_FLOOR
    else:
        floor = metric.sigma_floor * abs(expected) or 1e-9
    # the expectation is itself a median of a few points: its own error widens the spread
    sigma = max(mad_sigma(residuals), mad_sigma(pooled), floor) * math.sqrt(1 + math.pi / 2 / len(chosen))
    score = (_forward(metric, value) - expected_t) / sigma
    low, high = _band(metric, expected_t, sigma, warn_score, expected, bounded=metric_name == "null_fraction")
    change = abs(value - expected)
    big_enough = change >= metric.min_absolute and change >= metric.min_relative * abs(expected)
    return Verdict(metric_name, value, round(expected, 6), round(low, 6), round(high, 6), round(score, 3), bucket,
                   len(chosen),
                   abs(score) >= warn_score and big_enough)


def _band(metric: Metric, centre: float, sigma: float, width: float, expected: float, *, bounded: bool = False
          ) -> tuple[float, float]:
    """What would not have been an anomaly: the score band, widened by the guards, in the metric's unit."""
    low, high = _back(metric, centre - width * sigma), _back(metric, centre + width * sigma)
    guard = max(metric.min_absolute, metric.min_relative * abs(expected))
    low, high = min(low, expected - guard), max(high, expected + guard)
    if metric.log or bounded:
        low = max(low, 0.0)
    if bounded:
        high = min(high, 1.0)
    return low, high


# --------------------------------------------------------------------------- series of a measurement


def numeric(value: Any) -> float | None:
    """A statistic as a float, or None (text, dates and missing values are not judged)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metrics_of(rows: int | None, seconds: float | None, columns: Sequence[dict[str, Any]]
               ) -> dict[tuple[str, str], float]:
    """{(metric, column): value} of one measurement: row count and build seconds for the model, and
    per column its null fraction, distinct count and, for numbers, mean, stddev, min and max."""
    out: dict[tuple[str, str], float] = {}
    if rows is not None:
        out[("row_count", "")] = float(rows)
    if seconds is not None:
        out[("build_seconds", "")] = float(seconds)
    for col in columns:
        name = col.get("name")
        if not name:
            continue
        for key in COLUMN_METRICS:
            if key in ("min", "max") and col.get("sample"):
                continue  # the extremes of a sample are not the relation's
            value = numeric(col.get(key))
            if value is not None:
                out[(key, name)] = value
    return out


def schema_changes(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Columns added, removed or retyped between two measurements' column lists (in `after`'s order,
    then the removed ones)."""
    old = {c["name"]: str(c.get("type", "")) for c in before if c.get("name")}
    new = {c["name"]: str(c.get("type", "")) for c in after if c.get("name")}
    out = []
    for name, sql_type in new.items():
        if name not in old:
            out.append({"column": name, "kind": "added", "old_type": "", "new_type": sql_type})
        elif old[name].lower() != sql_type.lower():
            out.append({"column": name, "kind": "type_changed", "old_type": old[name], "new_type": sql_type})
    out += [{"column": name, "kind": "removed", "old_type": sql_type, "new_type": ""}
            for name, sql_type in old.items() if name not in new]
    return out
