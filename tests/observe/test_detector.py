"""The detector (runner/observe/anomalies.py) on generated histories with known anomalies and a known
normal rhythm: a normal Monday peak is no alert, a tenth of the rows is."""

from __future__ import annotations

import datetime as dt

import pytest

from runner.observe import anomalies
from runner.observe.anomalies import Point
from tests.observe.histories import START, ZONE, evaluate, hourly, normal, random

MONDAY_PEAK = START + dt.timedelta(weeks=6, hours=10)  # a Monday, 10:00 local
TUESDAY = MONDAY_PEAK + dt.timedelta(days=1)


def judge(value, at, history, **kw):
    return anomalies.judge("row_count", value, at, history, zone=ZONE, **kw)


def test_a_normal_monday_peak_is_no_anomaly():
    history = hourly(6)
    peak = normal(MONDAY_PEAK, rng=random.Random(7))
    verdict = judge(peak, MONDAY_PEAK, history)
    assert verdict.bucket == "weekday_hour" and not verdict.anomalous, verdict
    assert verdict.low <= peak <= verdict.high


def test_the_same_peak_on_a_tuesday_is_one():
    history = hourly(6, seed=2, rng=None) + [
        Point(MONDAY_PEAK + dt.timedelta(hours=h), normal(MONDAY_PEAK + dt.timedelta(hours=h), rng=random.Random(h)))
        for h in range(-10, 14)]  # that Monday happened
    monday_peak = normal(MONDAY_PEAK, rng=random.Random(7))
    assert judge(monday_peak, TUESDAY, history).anomalous


def test_a_quiet_sunday_night_is_no_anomaly():
    history = hourly(5, seed=3)
    at = START + dt.timedelta(weeks=5, days=6, hours=3)
    assert not judge(normal(at, rng=random.Random(1)), at, history).anomalous


def test_a_tenth_of_the_rows_is_an_anomaly_worth_an_incident():
    history = hourly(6, seed=4)
    verdict = judge(normal(TUESDAY, rng=random.Random(1)) // 10, TUESDAY, history)
    assert verdict.anomalous and verdict.score <= -8
    assert verdict.value < verdict.low < verdict.expected < verdict.high


def test_a_young_model_is_not_judged_and_then_judged_on_all_its_history():
    history = hourly(0.1)[:5]
    at = history[-1].at + dt.timedelta(hours=1)
    assert judge(10_000, at, history) is None  # fewer than min_history points
    history = hourly(0.3, noise=0.0, growth=0.0)  # 50 hours: no bucket of 4 yet for most hours
    at = history[-1].at + dt.timedelta(hours=1)
    assert judge(1_000, at, history, min_history=8).bucket in ("hour", "all")


def test_a_constant_table_does_not_fire_on_a_few_rows_but_does_on_a_real_change():
    at0 = START
    history = [Point(at0 + dt.timedelta(hours=h), 5_000) for h in range(300)]  # MAD 0
    at = at0 + dt.timedelta(hours=300)
    assert not judge(5_003, at, history).anomalous
    assert not judge(5_200, at, history).anomalous  # 4 %: under the relative guard
    assert judge(4_000, at, history).anomalous


def test_a_steadily_growing_daily_table_is_no_anomaly():
    history = [Point(START + dt.timedelta(days=d), 1_000_000 * 1.02 ** d) for d in range(70)]
    at = START + dt.timedelta(days=70)
    verdict = judge(1_000_000 * 1.02 ** 70, at, history)
    assert not verdict.anomalous and verdict.expected == pytest.approx(1_000_000 * 1.02 ** 70, rel=0.05)


def test_an_earlier_failure_in_the_history_does_not_hide_the_next():
    history = hourly(6, seed=5)
    history = [Point(p.at, p.value / 10, True) if i % 97 == 0 else p for i, p in enumerate(history)]
    assert judge(normal(TUESDAY, rng=random.Random(2)) / 10, TUESDAY, history).anomalous


def test_a_lasting_new_level_is_learnt_once_it_is_most_of_the_recent_points():
    history = hourly(6, seed=6, noise=0.02)
    half = [Point(p.at, p.value / 2, True) for p in history[-anomalies.RECENT:]]
    history = history[:-anomalies.RECENT] + half
    assert anomalies.usable(history) == history  # flagged points are the new normal now


def test_null_fraction_guard_ignores_tiny_moves():
    history = [Point(START + dt.timedelta(hours=h), 0.0) for h in range(200)]
    at = START + dt.timedelta(hours=200)
    assert not anomalies.judge("null_fraction", 0.001, at, history, zone=ZONE).anomalous
    assert anomalies.judge("null_fraction", 0.3, at, history, zone=ZONE).anomalous


@pytest.mark.parametrize("metric", ["row_count", "null_fraction"])
def test_precision_and_recall_on_generated_histories(metric, record_property):
    total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for seed in range(4):
        for key, value in evaluate(seed, metric=metric).items():
            total[key] += value
    precision = total["tp"] / max(1, total["tp"] + total["fp"])
    recall = total["tp"] / max(1, total["tp"] + total["fn"])
    record_property(f"{metric}_precision_recall", (round(precision, 3), round(recall, 3), total))
    assert precision >= 0.9 and recall >= 0.9, total


def test_schema_changes_between_two_measurements():
    before = [{"name": "id", "type": "INTEGER"}, {"name": "amount", "type": "DECIMAL(10,2)"},
              {"name": "gone", "type": "VARCHAR"}]
    after = [{"name": "id", "type": "BIGINT"}, {"name": "amount", "type": "decimal(10,2)"},
             {"name": "new", "type": "DATE"}]
    assert anomalies.schema_changes(before, after) == [
        {"column": "id", "kind": "type_changed", "old_type": "INTEGER", "new_type": "BIGINT"},
        {"column": "new", "kind": "added", "old_type": "", "new_type": "DATE"},
        {"column": "gone", "kind": "removed", "old_type": "VARCHAR", "new_type": ""},
    ]
