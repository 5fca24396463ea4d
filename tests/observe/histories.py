"""Generated histories for the detector's tests: hourly series with a daily and a weekly rhythm
(busy working hours, a Monday-morning peak, quiet weekends), growth and noise, and known anomalies."""

from __future__ import annotations

import datetime as dt
import math
import random
from zoneinfo import ZoneInfo

from runner.observe import anomalies

ZONE = ZoneInfo("Europe/Berlin")
START = dt.datetime(2026, 1, 5, 0, tzinfo=ZONE)  # a Monday


def rhythm(at: dt.datetime) -> float:
    """The normal shape of an hour: working hours busier, a Monday-morning peak, quiet weekends."""
    local = at.astimezone(ZONE)
    factor = 1.0 + (0.8 if 9 <= local.hour < 18 else 0.0)
    if local.weekday() == 0 and 8 <= local.hour < 13:
        factor *= 1.6  # the Monday peak: the weekend's orders arrive
    if local.weekday() >= 5:
        factor *= 0.45
    return factor


def normal(at: dt.datetime, *, base: float = 10_000, growth: float = 0.003, noise: float = 0.03,
           rng: random.Random) -> float:
    days = (at - START).total_seconds() / 86400
    return round(base * (1 + growth) ** days * rhythm(at) * math.exp(rng.gauss(0, noise)))


def hourly(weeks: float, **kw) -> list[anomalies.Point]:
    rng = kw.pop("rng", None) or random.Random(kw.pop("seed", 1))
    hours = int(weeks * 168)
    return [anomalies.Point(START + dt.timedelta(hours=h), normal(START + dt.timedelta(hours=h), rng=rng, **kw))
            for h in range(hours)]


def evaluate(seed: int, *, metric: str = "row_count", warmup_weeks: int = 6, weeks: int = 2, injected: int = 24,
             warn_score: float = 4.0) -> dict[str, int]:
    """Walk `weeks` of hours after a warm-up, as hourly runs would, with `injected` known anomalies
    (a failed load, a half load, a double load, ...). Points the detector flagged are flagged in the
    history it sees next, as runner.observe.record does. Counts true/false positives and negatives."""
    rng = random.Random(seed)
    if metric == "row_count":
        def value_at(at):
            return normal(at, rng=rng)
        faults = [0.1, 0.3, 0.5, 2.0, 3.0]

        def broken(v, f):
            return round(v * f)
    else:  # null_fraction: around 2 %, a broken join leaves a third of a column empty
        def value_at(at):
            return min(max(0.02 * rhythm(at) + rng.gauss(0, 0.003), 0.0), 1.0)
        faults = [0.25, 0.4, 0.6]

        def broken(v, f):
            return f
    history = [anomalies.Point(START + dt.timedelta(hours=h), value_at(START + dt.timedelta(hours=h)))
               for h in range(warmup_weeks * 168)]
    first = warmup_weeks * 168
    hours = list(range(first, first + weeks * 168))
    bad = set(rng.sample(hours, injected))
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for h in hours:
        at = START + dt.timedelta(hours=h)
        value = value_at(at)
        if h in bad:
            value = broken(value, rng.choice(faults))
        verdict = anomalies.judge(metric, value, at, history, zone=ZONE, warn_score=warn_score)
        flagged = bool(verdict and verdict.anomalous)
        counts[("t" if flagged == (h in bad) else "f") + ("p" if flagged else "n")] += 1
        history.append(anomalies.Point(at, value, flagged))
    return counts
