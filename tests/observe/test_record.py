"""Measurements kept on every build, judged on production runs (runner/observe/record.py): a failed-looking
load after the hourly run raises an anomaly and one incident, a normal run resolves it; schema changes
are recorded; per-model settings change the outcome; measuring never fails a build."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

import runner.tasks
from runner import runs
from runner.models import (
    Anomaly,
    AnomalySettings,
    Incident,
    Measurement,
    NodeRun,
    OutboxTask,
    Schedule,
    SchemaChange,
)
from runner.observe import record, signals
from tests.personas import make_persona
from tests.runner.test_runs import commit_to_main, drain

ORDERS = {"models/orders.sql": "{{ config(materialized='table') }}select * from raw.orders\n",
          "models/paid.sql": "select status, count(*) as n from {{ ref('orders') }} group by status\n"}
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def load(warehouse, rows: int) -> None:
    """The source as a loader left it: `rows` orders."""
    warehouse.run("create schema if not exists raw", "drop table if exists raw.orders",
                  "create table raw.orders as select i as order_id, (i % 3) as kind, "
                  "case when i % 2 = 0 then 'paid' else 'open' end as status "
                  f"from generate_series(1, {rows}) as t(i)")


def hourly_run(at: dt.datetime, *, judged: bool = True):
    """The run, then its judging: queued through the outbox as the run closed, run as a worker would."""
    with time_machine.travel(at + dt.timedelta(minutes=1), tick=True):
        run = drain(runs.fire_schedule(Schedule.objects.get().pk, at))
        queued = OutboxTask.objects.filter(task="runner.tasks.judge_run", arg=run.pk)
        assert queued.exists() == judged
        if judged:
            queued.delete()
            runner.tasks.judge_run(run.pk)
    return run


@pytest.mark.django_db
def test_a_tenth_of_the_rows_after_the_hourly_run_is_an_anomaly_and_one_incident(warehouse):
    commit_to_main(ORDERS)
    load(warehouse, 1000)
    for hour in range(8):
        assert hourly_run(START + dt.timedelta(hours=hour)).status == "success"
    assert Measurement.objects.filter(model="orders", kind="production").count() == 8
    assert not Anomaly.objects.exists()
    load(warehouse, 100)  # the loader failed half-way: a tenth of the rows
    broken = hourly_run(START + dt.timedelta(hours=8))
    assert broken.status == "success"  # the build worked; the data look wrong
    anomaly = Anomaly.objects.get(model="orders", metric="row_count")
    assert (anomaly.value, anomaly.expected, anomaly.severity, anomaly.run_id) == (100, 1000, "incident", broken.pk)
    incident = Incident.objects.get(cause="anomaly", subject="orders")
    assert incident.status == "open" and anomaly.incident_id == incident.pk
    assert "row count is 100, expected about 1,000" in incident.error
    # the run's page warns, and links the incident
    viewer = make_persona("viewer")
    page = Client()
    page.force_login(viewer)
    html = page.get(f"/runs/{broken.pk}/").content.decode()
    assert "The data looks unusual" in html and "orders</strong>:" in html and "row_count 100" in html
    assert f"/incidents/{incident.pk}/" in html
    # downstream, `paid` still has its two groups, but their counts fell tenfold: its own incident
    assert not Anomaly.objects.filter(model="paid", metric="row_count").exists()
    assert Anomaly.objects.filter(model="paid", metric="mean", column="n").exists()
    # still broken an hour later: the same incident, one more failure
    hourly_run(START + dt.timedelta(hours=9))
    incident.refresh_from_db()
    assert Incident.objects.filter(cause="anomaly", subject="orders").count() == 1 and incident.failures == 2
    load(warehouse, 1000)  # reloaded
    fixed = hourly_run(START + dt.timedelta(hours=10))
    incident.refresh_from_db()
    assert incident.status == "resolved" and f"run {fixed.pk}" in incident.resolution
    assert not Anomaly.objects.filter(run=fixed).exists()


@pytest.mark.django_db
def test_a_runs_measurements_are_judged_once_after_it_has_ended(duck):
    """Judging reads each model's history: it waits for the run's end, off the path of the nodes."""
    commit_to_main(ORDERS)
    load(duck, 1000)
    for hour in range(8):
        hourly_run(START + dt.timedelta(hours=hour))
    load(duck, 100)
    at = START + dt.timedelta(hours=8)
    with time_machine.travel(at + dt.timedelta(minutes=1), tick=True):
        run = drain(runs.fire_schedule(Schedule.objects.get().pk, at))
        assert run.status == "success"
        taken = Measurement.objects.filter(run=run)
        assert not taken.exists() and not Anomaly.objects.exists()  # the nodes did nothing for the data watch
        assert run.judged_at is None
        assert OutboxTask.objects.filter(task="runner.tasks.judge_run", arg=run.pk).count() == 1
        page = Client()
        page.force_login(make_persona("viewer"))
        assert 'id="judging"' in page.get(f"/runs/{run.pk}/").content.decode()
        assert runner.tasks.judge_run(run.pk) == "2 judged"
        assert runner.tasks.judge_run(run.pk) == "0 judged"  # a redelivered task judges nothing twice
        html = page.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="judging"' not in html and "The data looks unusual" in html
    assert Anomaly.objects.filter(model="orders", metric="row_count", run=run).count() == 1
    assert Incident.objects.filter(cause="anomaly", subject="orders").count() == 1
    assert taken.count() == 2 and not taken.filter(pending=True).exists() and taken.get(model="paid").rows == 2
    orders = taken.get(model="orders")  # the build's exact count, the node's end, statistics taken after
    assert orders.rows == 100 and orders.columns and orders.node_run.name == "orders"
    assert orders.measured_at == orders.node_run.finished_at
    run.refresh_from_db()
    assert run.judged_at >= run.finished_at


@pytest.mark.django_db
def test_the_reconciler_queues_the_judging_of_an_ended_run_left_unjudged(duck):
    commit_to_main(ORDERS)
    load(duck, 10)
    run = hourly_run(START)
    OutboxTask.objects.all().delete()
    Measurement.objects.filter(run=run).delete()  # e.g. cancelled, or its task died before it noted
    run.judged_at = None
    run.save(update_fields=["judged_at"])
    # not before the run has been over for DMAAS_NODE_LOST_SECONDS (its task may still be queued)
    assert runs.reconcile(now=run.finished_at + dt.timedelta(seconds=30))["judge"] == 0
    assert runs.reconcile(now=run.finished_at + dt.timedelta(minutes=11))["judge"] == 1
    assert OutboxTask.objects.filter(task="runner.tasks.judge_run", arg=run.pk).exists()
    assert runner.tasks.judge_run(run.pk) == "2 judged"
    OutboxTask.objects.all().delete()
    assert runs.reconcile(now=run.finished_at + dt.timedelta(minutes=20))["judge"] == 0
    assert Measurement.objects.filter(run=run).count() == 2


@pytest.mark.django_db
def test_every_build_measures_rows_seconds_and_columns(duck):
    commit_to_main(ORDERS)
    load(duck, 30)
    got = []
    signals.measured.connect(lambda sender, measurement, **kw: got.append(measurement.model), weak=False,
                             dispatch_uid="test-measured")
    try:
        run = hourly_run(START)
    finally:
        signals.measured.disconnect(dispatch_uid="test-measured")
    m = record.latest("orders")
    assert (m.kind, m.rows, m.run_id, m.schema) == ("production", 30, run.pk, "analytics")
    assert m.node_run == NodeRun.objects.get(run=run, name="orders") and m.seconds is not None
    cols = {c["name"]: c for c in m.columns}
    assert cols["order_id"]["min"] == 1 and cols["order_id"]["max"] == 30 and cols["status"]["top"] == [
        ["open", 15], ["paid", 15]]
    assert record.latest("paid").rows == 2  # a view is measured too
    assert sorted(got) == ["orders", "paid"]
    assert [s.rows for s in record.series("orders", 10)] == [30]


@pytest.mark.django_db
def test_columns_added_removed_and_retyped_are_recorded(duck):
    commit_to_main(ORDERS)
    load(duck, 10)
    hourly_run(START)
    commit_to_main({"models/orders.sql": "{{ config(materialized='table') }}select order_id, "
                                         "cast(kind as varchar) as kind, 1 as channel from raw.orders\n",
                    "models/paid.sql": "select 1 as n from {{ ref('orders') }}\n"})
    run = hourly_run(START + dt.timedelta(hours=1))
    changes = {(c.column, c.kind): (c.old_type, c.new_type) for c in SchemaChange.objects.filter(model="orders")}
    assert set(changes) == {("kind", "type_changed"), ("channel", "added"), ("status", "removed")}
    assert changes[("kind", "type_changed")][1] == "VARCHAR"
    assert set(SchemaChange.objects.filter(model="orders").values_list("run", flat=True)) == {run.pk}


@pytest.mark.django_db
def test_a_measuring_error_is_kept_and_the_build_stands(duck, monkeypatch):
    commit_to_main(ORDERS)
    load(duck, 10)

    def broken(*args, **kwargs):
        raise RuntimeError("the warehouse said no")

    monkeypatch.setattr(record.stats, "measure", broken)
    run = hourly_run(START)
    assert run.status == "success"
    m = record.latest("orders")
    assert "the warehouse said no" in m.error and m.rows == 10 and m.columns == []


def history(model: str, rows: list[int], start=START) -> None:
    Measurement.objects.bulk_create(
        Measurement(model=model, kind="production", schema="analytics", rows=r, seconds=1.0,
                    measured_at=start + dt.timedelta(hours=i)) for i, r in enumerate(rows))


def measure_now(model: str, rows: int, hours: int) -> list[Anomaly]:
    taken = record.Taken(model=model, schema="analytics", unique_id=f"model.dmaas.{model}",
                         measured_at=START + dt.timedelta(hours=hours), rows=rows, seconds=1.0)
    record.save_all([taken], "production")
    return list(Anomaly.objects.filter(model=model, measurement__measured_at=taken.measured_at))


@pytest.mark.django_db
def test_settings_per_model_change_the_outcome():
    for name in ("loud", "calm", "off", "young"):
        history(name, [1000] * 10)
    AnomalySettings.objects.create(model="calm", warn_score=4, incident_score=1e9)
    AnomalySettings.objects.create(model="off", enabled=False)
    AnomalySettings.objects.create(model="young", min_history=20)
    assert [a.severity for a in measure_now("loud", 500, 10)] == ["incident"]
    assert [a.severity for a in measure_now("calm", 500, 10)] == ["warning"]
    assert measure_now("off", 500, 10) == [] and measure_now("young", 500, 10) == []
    assert list(Incident.objects.values_list("subject", flat=True)) == ["loud"]
    # the defaults row changes every model without its own settings
    AnomalySettings.objects.create(model="", warn_score=1e8, incident_score=1e9)
    history("other", [1000] * 10)
    assert measure_now("other", 500, 10) == []


@pytest.mark.django_db
def test_ci_and_dev_measurements_are_kept_but_not_judged():
    history("orders", [1000] * 10)
    taken = record.Taken(model="orders", schema="ci_4", unique_id="model.dmaas.orders",
                         measured_at=START + dt.timedelta(hours=11), rows=3)
    (saved,) = record.save_all([taken], "ci")
    assert saved.kind == "ci" and not Anomaly.objects.exists()
    assert record.latest("orders").rows == 1000  # the catalog shows production


@pytest.mark.django_db
def test_measuring_can_be_switched_off(duck, settings):
    settings.DMAAS_MEASURE_BUILDS = False
    commit_to_main(ORDERS)
    load(duck, 30)
    assert hourly_run(START, judged=False).status == "success"
    assert not Measurement.objects.exists()
