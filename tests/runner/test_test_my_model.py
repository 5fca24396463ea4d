""""Test my model" (issue 5, item 5) through a real Celery worker on the interactive queue, on DuckDB
and PostgreSQL: a passing model, a failing not_null test with its failing rows, and who may see runs."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from celery import Celery, current_app
from celery.contrib.testing.worker import start_worker

import runner.tasks  # noqa: F401  (registers the task with every Celery app)
from models_service import changes
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from portal.broker import filesystem_transport_options
from runner import testrun
from runner.models import TestRun
from tests.personas import make_user
from tests.runner.conftest import MAIN_FILES, commit_to_main, seed_production

ENRICHED = ("select o.order_id, o.customer_id, c.name\n"
            "from {{ ref('stg_orders') }} o\n"
            "left join {{ ref('stg_customers') }} c on c.customer_id = o.customer_id\n")


@contextmanager
def interactive_worker(tmp_path):
    """A worker like the project's, consuming only the interactive queue the task is routed to."""
    app = Celery("dmaas-test-runner", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    from portal.celery import app as project_app

    app.conf.update(broker_url="filesystem://localhost//",
                    broker_transport_options=filesystem_transport_options(tmp_path / "broker"),
                    result_backend=None, task_routes=project_app.conf.task_routes)
    previous = current_app._get_current_object()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                          queues=[runner.tasks.INTERACTIVE_QUEUE]):
            yield app
    finally:
        previous.set_current()
        previous.set_default()
        app.close()


def poll(client, run_id, seconds=60):
    deadline = time.monotonic() + seconds
    seen = set()
    while True:
        body = client.get(f"/api/v1/test-runs/{run_id}").json()
        seen.add(body["status"])
        if body["status"] in ("passed", "failed", "error"):
            return body, seen
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_test_my_model_passes_and_fails_with_failing_rows(analyst, warehouse, api_for, tmp_path):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    change = changes.open_change(analyst, "Enriched orders")
    changes.save_model(analyst, change, "orders_enriched", ENRICHED, ModelSpec(
        name="orders_enriched", config={"materialized": "table"},
        columns=[ColumnSpec("order_id", tests=[DataTest("unique"), DataTest("not_null")])]))
    changes.save_model(analyst, change, "orders_checked", ENRICHED, ModelSpec(
        name="orders_checked",
        columns=[ColumnSpec("order_id", tests=[DataTest("not_null")]),
                 ColumnSpec("customer_id", tests=[DataTest("not_null")])]))
    client = api_for(analyst)

    with interactive_worker(tmp_path):
        answer = client.post(f"/api/v1/changes/{change.pk}/models/orders_enriched/test")
        assert answer.status_code == 202, answer.content
        assert answer.json()["status"] == "queued" and answer.json()["model"] == "orders_enriched"
        passed, _ = poll(client, answer.json()["id"])

        answer = client.post(f"/api/v1/changes/{change.pk}/models/orders_checked/test")
        assert answer.status_code == 202
        failed, _ = poll(client, answer.json()["id"])

    assert passed["status"] == "passed", passed
    assert passed["change"] == change.pk and passed["schema"] == "dev_analyst"
    assert passed["started_at"] and passed["finished_at"]
    kinds = [(s["kind"], s["name"], s["status"]) for s in passed["steps"]]
    assert kinds[0] == ("model", "orders_enriched", "success")
    assert sorted(k[2] for k in kinds[1:]) == ["pass", "pass"] and all(k[0] == "test" for k in kinds[1:])
    assert passed["steps"][0]["rows"] in (3, None)
    # built into the analyst's schema from production's parents; production untouched
    assert warehouse.rows("select count(*) from dev_analyst.orders_enriched")[0][0] == 3
    assert warehouse.rows("select name from dev_analyst.orders_enriched where order_id = 1")[0][0] == "Ada"

    assert failed["status"] == "failed", failed
    by_name = {s["name"]: s for s in failed["steps"]}
    bad = by_name["not_null_orders_checked_customer_id"]
    assert bad["status"] == "fail" and bad["rows"] == 1
    assert bad["failing_columns"] == ["customer_id"] and bad["failing_rows"] == [[None]]
    assert by_name["not_null_orders_checked_order_id"]["status"] == "pass"
    assert "not_null_orders_checked_customer_id" in failed["message"]


@pytest.mark.django_db
def test_only_the_requester_and_admins_see_a_run_and_only_authors_test(analyst, admin, reviewer, duck, api_for,
                                                                      monkeypatch):
    monkeypatch.setattr(testrun, "_enqueue", lambda run_id: None)  # no worker needed here
    commit_to_main(MAIN_FILES)
    change = changes.open_change(analyst, "Enriched orders")
    changes.save_model(analyst, change, "orders_enriched", ENRICHED, ModelSpec(name="orders_enriched"))
    other = make_user("other_analyst", "analyst")

    answer = api_for(analyst).post(f"/api/v1/changes/{change.pk}/models/orders_enriched/test")
    assert answer.status_code == 202
    run_id = answer.json()["id"]
    assert api_for(analyst).get(f"/api/v1/test-runs/{run_id}").status_code == 200
    assert api_for(admin).get(f"/api/v1/test-runs/{run_id}").status_code == 200
    assert api_for(other).get(f"/api/v1/test-runs/{run_id}").json()["error"]["code"] == "not_found"
    assert api_for(reviewer).get(f"/api/v1/test-runs/{run_id}").status_code == 403
    # another analyst cannot test (or even see) a draft that is not theirs
    assert api_for(other).post(f"/api/v1/changes/{change.pk}/models/orders_enriched/test").status_code == 404
    assert api_for(reviewer).post(f"/api/v1/changes/{change.pk}/models/orders_enriched/test").status_code == 403
    assert api_for(analyst).post(f"/api/v1/changes/{change.pk}/models/nope/test").status_code == 404
    assert api_for(admin).post(f"/api/v1/changes/{change.pk}/models/orders_enriched/test").status_code == 202
    assert TestRun.objects.filter(change=change).count() == 2


@pytest.mark.django_db
def test_a_finished_run_is_not_run_again(analyst, duck, monkeypatch):
    monkeypatch.setattr(testrun, "_enqueue", lambda run_id: None)
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    change = changes.open_change(analyst, "Enriched orders")
    changes.save_model(analyst, change, "orders_enriched", ENRICHED, ModelSpec(name="orders_enriched"))
    run = testrun.request_test(analyst, change.pk, "orders_enriched")
    assert testrun.execute(run.pk) == "passed"
    finished = TestRun.objects.get(pk=run.pk).finished_at
    assert testrun.execute(run.pk) == "passed"  # a redelivery leaves it alone
    assert TestRun.objects.get(pk=run.pk).finished_at == finished


@pytest.mark.django_db
def test_a_model_that_does_not_compile_ends_in_error_with_its_line(analyst, duck, monkeypatch):
    monkeypatch.setattr(testrun, "_enqueue", lambda run_id: None)
    commit_to_main(MAIN_FILES)
    change = changes.open_change(analyst, "Broken")
    changes.save_model(analyst, change, "broken", "select\n  1 as a,\n  from from x\n", ModelSpec(name="broken"))
    run = testrun.request_test(analyst, change.pk, "broken")
    assert testrun.execute(run.pk) == "error"
    run.refresh_from_db()
    assert "syntax error" in run.message.lower() and "(line 3)" in run.message


@pytest.mark.django_db
def test_parents_modified_in_the_change_are_built_into_dev_first(analyst, warehouse, monkeypatch):
    monkeypatch.setattr(testrun, "_enqueue", lambda run_id: None)
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    change = changes.open_change(analyst, "Rename Ada")
    changes.save_model(analyst, change, "stg_customers", "select 10 as customer_id, 'Zed' as name\n",
                       ModelSpec(name="stg_customers"))
    changes.save_model(analyst, change, "orders_enriched", ENRICHED, ModelSpec(
        name="orders_enriched", config={"materialized": "incremental"}))
    for _ in range(2):  # twice: an incremental model is rebuilt whole in dev, never appended to
        run = testrun.request_test(analyst, change.pk, "orders_enriched")
        assert testrun.execute(run.pk) == "passed", TestRun.objects.get(pk=run.pk).message
    run.refresh_from_db()
    assert [(s["kind"], s["name"], s["status"]) for s in run.steps] == [
        ("model", "stg_customers", "success"), ("model", "orders_enriched", "success")]
    assert warehouse.rows("select name from dev_analyst.orders_enriched where order_id = 1") == [("Zed",)]
    assert warehouse.rows("select count(*) from dev_analyst.orders_enriched")[0][0] == 3
    assert warehouse.rows("select name from analytics.stg_customers where customer_id = 10") == [("Ada",)]
