"""The API of production runs (issue 7, item 6), on a real bare git repository and a DuckDB warehouse.

Schedules are listed by everyone with a role and changed by platform admins, each change reaching
django-celery-beat's task; a run started by hand is a 202 and shows in the list, filtered by
schedule, status or model; a run's answer has its nodes (and, asked for, their compiled SQL); a
finished run is retried, a going one cancelled, and the wrong one of each is a 409; what runs next
lists each schedule's slots and models; incidents are read by analysts, reviewers and admins and
handled by admins. Nodes are run here by calling the task's body (runner.runs.execute_node), as a
worker would. The data-models repository is tests/api/conftest.py's `repo` (autouse).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from models_service import audit, index
from models_service.repo import get_store
from runner import incidents, runs
from runner import warehouse as wh
from runner.models import Incident, NodeRun, Run, Schedule
from tests.runner.conftest import commit_to_main, duckdb_warehouse

from .conftest import client_for

pytestmark = pytest.mark.django_db

MAIN = {
    "models/orders.sql": "{{ config(materialized='table') }}\n"
    "select * from (values (1, 'open'), (2, 'shipped')) as t(order_id, status)\n",
    "models/order_count.sql": "select count(*) as n from {{ ref('orders') }}\n",
    "models/orders.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n"
    "        data_tests: [not_null]\n",
}
BROKEN = {"models/order_count.sql": "select count(no_such_column) as n\nfrom {{ ref('orders') }}\n"}
HOURLY = "Hourly production run"


def on_main(files: dict[str, str]) -> str:
    """Files onto main, indexed as a merge would index them."""
    sha = commit_to_main(files)
    index.rebuild(get_store())
    return sha


@pytest.fixture
def main():
    return on_main(MAIN)


@pytest.fixture
def duck(tmp_path, settings, main):
    """A DuckDB warehouse of this test's own (production is built by the runs themselves)."""
    wh.forget_warehouses()
    yield duckdb_warehouse(tmp_path, settings)
    wh.forget_warehouses()


def drain(run_id: int, limit: int = 200) -> Run:
    """Run queued nodes one by one, as workers would, until the run is done."""
    for _ in range(limit):
        node = NodeRun.objects.filter(run_id=run_id, status="queued").order_by("id").first()
        if node is None:
            break
        runs.execute_node(node.pk, worker="test")
    return Run.objects.get(pk=run_id)


def failed_run() -> Run:
    """A scheduled run of main with order_count broken: orders builds, order_count fails."""
    on_main(BROKEN)
    run = runs.fire_schedule(Schedule.objects.get(name=HOURLY).pk, dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    run = drain(run.pk)
    assert run.status == "failed", run.message
    return run


def error_of(response, status: int, field=None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field and error["message"]
    return error


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def beat_task(schedule_id: int) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=f"dmaas-schedule-{schedule_id}").first()


# --------------------------------------------------------------------------- schedules


def test_schedules_are_listed_with_their_next_slots(viewer):
    [hourly] = client_for(viewer).get("/api/v1/schedules").json()["results"]
    assert (hourly["name"], hourly["cron"], hourly["enabled"], hourly["after"]) == (HOURLY, "0 * * * *", True, None)
    slots = [dt.datetime.fromisoformat(s) for s in hourly["next"]]
    assert len(slots) == 3 and slots == sorted(slots)
    assert all(s.minute == 0 and s.second == 0 for s in slots) and slots[1] - slots[0] == dt.timedelta(hours=1)
    assert client_for(viewer).get(f"/api/v1/schedules/{hourly['id']}").json()["name"] == HOURLY
    error_of(client_for(viewer).get("/api/v1/schedules/999999"), 404)


def test_admins_create_change_and_delete_schedules_with_their_beat_tasks(admin, viewer):
    as_admin = client_for(admin)
    url = "/api/v1/schedules"

    bad = error_of(as_admin.post(url, {"name": "Nightly", "cron": "every night"}, format="json"), 400, "cron")
    assert "five fields" in bad["message"]
    error_of(as_admin.post(url, {"name": "Nightly"}, format="json"), 400, "cron")  # neither cron nor after
    error_of(as_admin.post(url, {"cron": "0 2 * * *"}, format="json"), 400, "name")
    error_of(as_admin.post(url, {"name": "Nightly", "cron": "0 2 * * *", "select": "++"}, format="json"), 400,
             "select")
    error_of(as_admin.post(url, {"name": "Nightly", "cron": "0 2 * * *", "crontab": "x"}, format="json"), 400,
             "crontab")
    error_of(as_admin.post(url, {"name": "Nightly", "cron": "0 2 * * *", "on_overlap": "wait"}, format="json"), 400,
             "on_overlap")
    assert Schedule.objects.count() == 1

    made = as_admin.post(url, {"name": "Nightly", "cron": "0  2 * * *", "select": "orders+", "on_overlap": "queue"},
                         format="json")
    assert made.status_code == 201, made.content
    nightly = made.json()
    assert (nightly["cron"], nightly["select"], nightly["on_overlap"], nightly["enabled"]) == (
        "0 2 * * *", "orders+", "queue", True)
    assert len(nightly["next"]) == 3
    task = beat_task(nightly["id"])
    assert task.enabled and (task.crontab.minute, task.crontab.hour) == ("0", "2")
    assert task.task == "runner.tasks.fire_schedule" and task.args == f"[{nightly['id']}]"
    error_of(as_admin.post(url, {"name": "Nightly", "cron": "0 3 * * *"}, format="json"), 400, "name")

    follower = as_admin.post(url, {"name": "After nightly", "after": nightly["id"]}, format="json").json()
    assert (follower["after"], follower["after_name"], follower["cron"], follower["next"]) == (
        nightly["id"], "Nightly", "", [])
    assert beat_task(follower["id"]) is None  # no cron: it runs after Nightly, not on a beat
    error_of(as_admin.post(url, {"name": "x", "after": 999999}, format="json"), 400, "after")

    one = f"{url}/{nightly['id']}"
    error_of(as_admin.patch(one, {"cron": "0 25 * * *"}, format="json"), 400, "cron")
    error_of(as_admin.patch(one, {"after": nightly["id"]}, format="json"), 400, "after")
    error_of(as_admin.patch(one, {}, format="json"), 400)
    changed = as_admin.patch(one, {"cron": "15 3 * * *"}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["cron"], changed.json()["select"], changed.json()["on_overlap"]) == (
        "15 3 * * *", "orders+", "queue")  # only what was sent changed
    assert (beat_task(nightly["id"]).crontab.minute, beat_task(nightly["id"]).crontab.hour) == ("15", "3")
    entry = audit.entries(action="schedule.save").first()
    assert entry.source == "api" and entry.actor_name == admin.username

    as_viewer = client_for(viewer)
    assert as_viewer.post(url, {"name": "Mine", "cron": "0 1 * * *"}, format="json").status_code == 403
    assert as_viewer.patch(one, {"cron": "0 1 * * *"}, format="json").status_code == 403
    assert as_viewer.delete(one).status_code == 403

    assert as_admin.delete(one).status_code == 204
    assert beat_task(nightly["id"]) is None and not Schedule.objects.filter(pk=nightly["id"]).exists()
    assert Schedule.objects.get(pk=follower["id"]).after_id is None
    assert audit.entries(action="schedule.delete").first().source == "api"
    error_of(as_admin.get(one), 404)
    error_of(as_admin.delete(one), 404)


def test_pause_and_resume_switch_the_beat_task(admin, analyst):
    hourly = Schedule.objects.get(name=HOURLY)
    as_admin = client_for(admin)

    paused = as_admin.post(f"/api/v1/schedules/{hourly.pk}/pause")
    assert paused.status_code == 200, paused.content
    assert paused.json()["enabled"] is False and paused.json()["next"] == []
    assert beat_task(hourly.pk).enabled is False
    assert as_admin.post(f"/api/v1/schedules/{hourly.pk}/pause").json()["enabled"] is False  # again: no harm

    resumed = as_admin.post(f"/api/v1/schedules/{hourly.pk}/resume")
    assert resumed.status_code == 200 and resumed.json()["enabled"] is True and len(resumed.json()["next"]) == 3
    assert beat_task(hourly.pk).enabled is True

    assert client_for(analyst).post(f"/api/v1/schedules/{hourly.pk}/pause").status_code == 403
    assert beat_task(hourly.pk).enabled is True
    error_of(as_admin.post("/api/v1/schedules/999999/resume"), 404)


def test_run_now_is_a_202_and_the_run_is_listed(duck, admin, viewer):
    hourly = Schedule.objects.get(name=HOURLY)
    started = client_for(admin).post(f"/api/v1/schedules/{hourly.pk}/run")
    assert started.status_code == 202, started.content
    run = started.json()
    assert (run["status"], run["trigger"], run["requested_by"]) == ("running", "manual", admin.username)
    assert run["schedule"] == {"id": hourly.pk, "name": HOURLY} and run["nodes_total"] == 3 and len(run["sha"]) == 40
    assert audit.entries(action="run.request").first().source == "api"

    assert ids(client_for(viewer).get("/api/v1/runs")) == [run["id"]]
    assert drain(run["id"]).status == "success"
    listed = client_for(viewer).get("/api/v1/runs").json()["results"][0]
    assert listed["status"] == "success" and listed["finished_at"] and listed["seconds"] is not None
    assert client_for(viewer).post(f"/api/v1/schedules/{hourly.pk}/run").status_code == 403
    assert Run.objects.count() == 1


def test_runs_are_filtered_by_schedule_status_and_model(duck, admin):
    as_admin = client_for(admin)
    error_of(as_admin.post("/api/v1/runs", {"select": "++"}, format="json"), 400, "select")
    by_hand = as_admin.post("/api/v1/runs", {"select": "orders"}, format="json")
    assert by_hand.status_code == 202, by_hand.content
    assert by_hand.json()["schedule"] is None and by_hand.json()["select"] == "orders"
    first = drain(by_hand.json()["id"])
    assert first.status == "success" and set(NodeRun.objects.filter(run=first).values_list("name", flat=True)) == {
        "orders", "not_null_orders_order_id"}
    second = failed_run()
    hourly = Schedule.objects.get(name=HOURLY)

    assert ids(as_admin.get("/api/v1/runs")) == [second.pk, first.pk]  # newest first
    assert ids(as_admin.get(f"/api/v1/runs?schedule={hourly.pk}")) == [second.pk]
    assert ids(as_admin.get("/api/v1/runs?status=failed")) == [second.pk]
    assert ids(as_admin.get("/api/v1/runs?status=success")) == [first.pk]
    assert ids(as_admin.get("/api/v1/runs?model=order_count")) == [second.pk]
    assert ids(as_admin.get("/api/v1/runs?model=orders")) == [second.pk, first.pk]
    assert ids(as_admin.get("/api/v1/runs?model=nothing")) == []
    page = as_admin.get("/api/v1/runs?page_size=1").json()
    assert page["count"] == 2 and [r["id"] for r in page["results"]] == [second.pk] and "page=2" in page["next"]
    error_of(as_admin.get("/api/v1/runs?status=exploded"), 400, "status")
    error_of(as_admin.get("/api/v1/runs?schedule=hourly"), 400, "schedule")


def test_a_run_shows_its_nodes_and_on_request_their_sql(duck, viewer):
    run = failed_run()
    url = f"/api/v1/runs/{run.pk}"
    body = client_for(viewer).get(url).json()
    assert body["id"] == run.pk and body["status"] == "failed" and body["message"] == run.message
    nodes = {n["name"]: n for n in body["nodes"]}
    assert set(nodes) == {"orders", "not_null_orders_order_id", "order_count"}
    assert [n["name"] for n in body["nodes"]][0] == "orders"  # in the order they were planned
    broken = nodes["order_count"]
    assert set(broken) == {"unique_id", "name", "resource_type", "status", "attempts", "worker", "started_at",
                           "finished_at", "seconds", "rows", "failures", "message", "error_line", "cause", "parents"}
    assert (broken["status"], broken["resource_type"], broken["attempts"], broken["worker"]) == (
        "error", "model", 1, "test")
    assert "no_such_column" in broken["message"] and broken["finished_at"]
    assert set(broken["parents"]) == {nodes["orders"]["unique_id"], nodes["not_null_orders_order_id"]["unique_id"]}
    assert nodes["orders"]["status"] == "success" and nodes["not_null_orders_order_id"]["status"] == "pass"
    assert nodes["not_null_orders_order_id"]["failures"] == 0

    with_sql = {n["name"]: n for n in client_for(viewer).get(f"{url}?sql=1").json()["nodes"]}
    assert "no_such_column" in with_sql["order_count"]["compiled_sql"]
    assert "ref(" not in with_sql["order_count"]["compiled_sql"]  # compiled, not as written
    assert "compiled_sql" not in client_for(viewer).get(f"{url}?sql=0").json()["nodes"][0]
    error_of(client_for(viewer).get(f"{url}?sql=perhaps"), 400, "sql")
    error_of(client_for(viewer).get("/api/v1/runs/999999"), 404)


def test_retry_runs_the_failed_nodes_again_and_only_admins_may(duck, admin, analyst):
    run = failed_run()
    url = f"/api/v1/runs/{run.pk}/retry"
    assert client_for(analyst).post(url).status_code == 403
    on_main({"models/order_count.sql": MAIN["models/order_count.sql"]})  # fixed on main

    retried = client_for(admin).post(url)
    assert retried.status_code == 202, retried.content
    retry = retried.json()
    assert (retry["retry_of"], retry["trigger"], retry["select"], retry["status"]) == (
        run.pk, "retry", "order_count", "running")
    assert drain(retry["id"]).status == "success"
    assert audit.entries(action="run.retry").first().source == "api"
    nothing = error_of(client_for(admin).post(f"/api/v1/runs/{retry['id']}/retry"), 409)
    assert nothing["code"] == "invalid_state" and "nothing to retry" in nothing["message"]
    error_of(client_for(admin).post("/api/v1/runs/999999/retry"), 404)


def test_a_going_run_is_cancelled_not_retried_and_a_finished_one_not_cancelled(duck, admin, analyst):
    going = client_for(admin).post("/api/v1/runs", {}, format="json").json()
    assert going["status"] == "running"
    assert error_of(client_for(admin).post(f"/api/v1/runs/{going['id']}/retry"), 409)["code"] == "invalid_state"
    assert client_for(analyst).post(f"/api/v1/runs/{going['id']}/cancel").status_code == 403

    cancelled = client_for(admin).post(f"/api/v1/runs/{going['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["message"] == f"cancelled by {admin.username}"
    assert set(NodeRun.objects.filter(run_id=going["id"]).values_list("status", flat=True)) == {"skipped"}
    assert audit.entries(action="run.cancel").first().source == "api"
    again = error_of(client_for(admin).post(f"/api/v1/runs/{going['id']}/cancel"), 409)
    assert again["code"] == "invalid_state" and "cancelled already" in again["message"]


def test_what_runs_next_lists_each_enabled_schedule_soonest_first(duck, admin, viewer):
    runs.save_schedule(admin, None, name="Nightly", cron="0 2 * * *", select="orders")
    runs.save_schedule(admin, None, name="Paused", cron="0 3 * * *", enabled=False)
    rows = client_for(viewer).get("/api/v1/runs/next").json()
    assert [r["schedule"]["name"] for r in rows] == [HOURLY, "Nightly"]  # hourly comes first; paused is left out
    hourly, nightly = rows
    assert len(hourly["next"]) == 1 and hourly["after"] is None
    assert hourly["models"] == ["order_count", "orders"] and nightly["models"] == ["orders"]
    assert hourly["predicted_seconds"] == 0  # nothing has run yet
    assert [len(r["next"]) for r in client_for(viewer).get("/api/v1/runs/next?count=4").json()] == [4, 4]
    error_of(client_for(viewer).get("/api/v1/runs/next?count=0"), 400, "count")


# --------------------------------------------------------------------------- incidents


def test_incidents_are_listed_and_filtered_for_analysts_but_not_viewers(duck, analyst, viewer):
    run = failed_run()
    other = incidents.report("orders", "test_failed", "not_null_orders_order_id: 1 failing row")
    Incident.objects.filter(pk=other.pk).update(status="resolved", resolution="fixed")
    model_failed = Incident.objects.get(subject="order_count")
    as_analyst = client_for(analyst)

    assert set(ids(as_analyst.get("/api/v1/incidents"))) == {model_failed.pk, other.pk}
    assert ids(as_analyst.get("/api/v1/incidents?status=open")) == [model_failed.pk]
    assert ids(as_analyst.get("/api/v1/incidents?status=resolved")) == [other.pk]
    assert ids(as_analyst.get("/api/v1/incidents?subject=orders")) == [other.pk]
    assert ids(as_analyst.get("/api/v1/incidents?cause=model_failed&subject=order_count")) == [model_failed.pk]
    error_of(as_analyst.get("/api/v1/incidents?status=closed"), 400, "status")
    error_of(as_analyst.get("/api/v1/incidents?cause=gremlins"), 400, "cause")

    one = as_analyst.get(f"/api/v1/incidents/{model_failed.pk}").json()
    assert (one["subject"], one["cause"], one["status"], one["run"], one["failures"]) == (
        "order_count", "model_failed", "open", run.pk, 1)
    assert "no_such_column" in one["error"] and one["assignee"] is None and one["acknowledged_by"] is None
    error_of(as_analyst.get("/api/v1/incidents/999999"), 404)

    as_viewer = client_for(viewer)
    assert as_viewer.get("/api/v1/runs").status_code == 200  # viewers read runs...
    assert as_viewer.get(f"/api/v1/runs/{run.pk}").status_code == 200
    assert error_of(as_viewer.get("/api/v1/incidents"), 403)["code"] == "permission_denied"  # ...not incidents
    assert as_viewer.get(f"/api/v1/incidents/{model_failed.pk}").status_code == 403


def test_admins_acknowledge_assign_and_resolve_an_incident(admin, analyst):
    incident = incidents.report("orders", "model_failed", "boom")
    url = f"/api/v1/incidents/{incident.pk}"
    as_admin, as_analyst = client_for(admin), client_for(analyst)

    assert as_analyst.post(f"{url}/acknowledge", {"note": "mine"}, format="json").status_code == 403
    acked = as_admin.post(f"{url}/acknowledge", {"note": "Looking at the source."}, format="json")
    assert acked.status_code == 200, acked.content
    assert (acked.json()["status"], acked.json()["acknowledged_by"], acked.json()["acknowledge_note"]) == (
        "acknowledged", admin.username, "Looking at the source.")
    assert acked.json()["acknowledged_at"]
    twice = error_of(as_admin.post(f"{url}/acknowledge", {}, format="json"), 409)
    assert twice["code"] == "invalid_state" and "acknowledged already" in twice["message"]

    assert as_analyst.post(f"{url}/assign", {"assignee": analyst.username}, format="json").status_code == 403
    assigned = as_admin.post(f"{url}/assign", {"assignee": analyst.username}, format="json")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == analyst.username
    error_of(as_admin.post(f"{url}/assign", {"assignee": "nobody"}, format="json"), 400, "assignee")
    error_of(as_admin.post(f"{url}/assign", {}, format="json"), 400, "assignee")
    assert as_admin.post(f"{url}/assign", {"assignee": None}, format="json").json()["assignee"] is None

    assert as_analyst.post(f"{url}/resolve", {"resolution": "done"}, format="json").status_code == 403
    assert "Say what was done" in error_of(as_admin.post(f"{url}/resolve", {}, format="json"), 400,
                                           "resolution")["message"]
    error_of(as_admin.post(f"{url}/resolve", {"resolution": "   "}, format="json"), 400, "resolution")
    resolved = as_admin.post(f"{url}/resolve", {"resolution": "Fixed the source table."}, format="json")
    assert resolved.status_code == 200, resolved.content
    body = resolved.json()
    assert (body["status"], body["resolved_by"], body["resolution"]) == ("resolved", admin.username,
                                                                         "Fixed the source table.")
    assert error_of(as_admin.post(f"{url}/resolve", {"resolution": "again"}, format="json"), 409)["code"] == (
        "invalid_state")
    error_of(as_admin.post(f"{url}/assign", {"assignee": admin.username}, format="json"), 409)
    error_of(as_admin.post(f"{url}/acknowledge", {}, format="json"), 409)
    error_of(as_admin.post("/api/v1/incidents/999999/resolve", {"resolution": "x"}, format="json"), 404)
    for action in ("incident.acknowledge", "incident.assign", "incident.resolve"):
        assert {(e.source, e.actor_name) for e in audit.entries(action=action)} == {("api", admin.username)}, action


# --------------------------------------------------------------------------- who may call

ADDRESSES = ["/api/v1/schedules", "/api/v1/schedules/1", "/api/v1/schedules/1/pause", "/api/v1/runs",
             "/api/v1/runs/next", "/api/v1/runs/1", "/api/v1/runs/1/retry", "/api/v1/incidents",
             "/api/v1/incidents/1", "/api/v1/incidents/1/resolve"]


@pytest.mark.parametrize("url", ADDRESSES)
def test_anonymous_callers_get_401(url):
    response = APIClient().get(url) if not url.endswith(("pause", "retry", "resolve")) else APIClient().post(url)
    error = error_of(response, 401)
    assert error["code"] == "not_authenticated" and "WWW-Authenticate" in response


def test_an_account_without_a_role_reads_nothing(outsider):
    for url in ("/api/v1/schedules", "/api/v1/runs", "/api/v1/runs/next", "/api/v1/incidents"):
        assert client_for(outsider).get(url).status_code == 403, url
