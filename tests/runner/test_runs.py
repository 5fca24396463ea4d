"""Production runs (issue 7): planned once, nodes dispatched as their parents finish, one run per slot
and per target, skips below a failure, retries, incidents. The task bodies are called here as a
worker calls them (`drain`); tests/runner/test_runs_workers.py runs them through real workers."""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from models_service import index
from models_service.repo import get_store
from runner import incidents, runs
from runner.models import Incident, NodeRun, OutboxTask, Run, Schedule
from tests.personas import make_user
from tests.runner.conftest import commit_to_main as _commit

# dbt's own concurrency case (tests/functional/concurrency): 7 models, one broken, one below it.
SEVEN = {
    "models/view_model.sql": "select 1 as id",
    "models/dep.sql": "select * from {{ ref('view_model') }}",
    "models/table_a.sql": "{{ config(materialized='table') }}select 1 as id",
    "models/table_b.sql": "{{ config(materialized='table') }}select * from {{ ref('table_a') }}",
    "models/view_with_conflicting_cascade.sql": "select * from {{ ref('table_a') }}",
    "models/invalid.sql": "{{ config(materialized='table') }}\nselect id,\n  no_such_column\nfrom {{ ref('view_model') }}",
    "models/skip.sql": "select * from {{ ref('invalid') }}",
}


def commit_to_main(files):
    sha = _commit(files)
    index.rebuild(get_store())
    return sha


def drain(run: Run, limit: int = 500) -> Run:
    """Run queued nodes one by one, as workers would, until the run is done."""
    for _ in range(limit):
        node = NodeRun.objects.filter(run=run, status="queued").order_by("id").first()
        if node is None:
            break
        runs.execute_node(node.pk, worker="test")
    run.refresh_from_db()
    return run


@pytest.fixture
def admin(db):
    return make_user("adam", "admin")


def statuses(run: Run) -> dict[str, str]:
    return dict(NodeRun.objects.filter(run=run).values_list("name", "status"))


@pytest.mark.django_db
def test_the_hourly_schedule_exists_from_the_start_with_its_beat_task():
    schedule = Schedule.objects.get()
    assert (schedule.name, schedule.cron, schedule.select) == ("Hourly production run", "0 * * * *", "")
    task = PeriodicTask.objects.get(name=f"dmaas-schedule-{schedule.pk}")
    assert task.task == "runner.tasks.fire_schedule" and task.crontab.minute == "0" and task.args == f"[{schedule.pk}]"


@pytest.mark.django_db
def test_an_hourly_run_builds_everything_in_dependency_order(warehouse):
    commit_to_main({k: v for k, v in SEVEN.items() if k not in ("models/invalid.sql", "models/skip.sql")})
    schedule = Schedule.objects.get()
    run = runs.fire_schedule(schedule.pk, dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    assert run.status == "running" and run.nodes_total == 5 and run.sha
    assert set(NodeRun.objects.filter(run=run, status="queued").values_list("name", flat=True)) == {
        "view_model", "table_a"}
    run = drain(run)
    assert run.status == "success", run.message
    assert set(statuses(run).values()) == {"success"}
    assert warehouse.rows("select count(*) from analytics.table_b") == [(1,)]
    order = list(NodeRun.objects.filter(run=run).order_by("started_at").values_list("name", flat=True))
    assert order.index("table_a") < order.index("table_b") and order.index("view_model") < order.index("dep")


@pytest.mark.django_db
def test_one_broken_model_gives_dbts_five_one_one_and_one_incident(duck):
    commit_to_main(SEVEN)
    run = drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)))
    got = statuses(run)
    assert sorted(got.values()) == ["error", "skipped"] + ["success"] * 5
    assert got["invalid"] == "error" and got["skip"] == "skipped"
    assert run.status == "failed" and "5 of 7" in run.message
    node = NodeRun.objects.get(run=run, name="invalid")
    assert "no_such_column" in node.message and "no_such_column" in node.compiled_sql
    assert "no_such_column" in node.compiled_sql.splitlines()[node.error_line - 1]  # the line, in the SQL shown
    incident = Incident.objects.get()
    assert (incident.subject, incident.cause, incident.status) == ("invalid", "model_failed", "open")
    # the next hour fails the same way: the same incident, one more failure
    drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)))
    incident.refresh_from_db()
    assert Incident.objects.count() == 1 and incident.failures == 2


@pytest.mark.django_db
def test_a_slot_runs_once_whoever_fires_it(duck):
    commit_to_main({"models/a.sql": "select 1 as id"})
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 13, tzinfo=dt.UTC)
    first = runs.fire_schedule(schedule.pk, slot)
    assert runs.fire_schedule(schedule.pk, slot) is None  # a second beat, a redelivered message
    assert Run.objects.filter(schedule=schedule, slot=slot).count() == 1
    drain(first)


@pytest.mark.django_db
def test_a_slot_that_comes_while_a_run_is_going_is_skipped_and_says_why(duck):
    commit_to_main({"models/a.sql": "select 1 as id"})
    schedule = Schedule.objects.get()
    going = runs.fire_schedule(schedule.pk, dt.datetime(2026, 12, 1, 14, tzinfo=dt.UTC))
    late = runs.fire_schedule(schedule.pk, dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC))
    assert going.status == "running" and late.status == "skipped"
    assert late.message == runs.SKIPPED_BUSY
    assert Incident.objects.get().cause == "run_skipped"
    drain(going)


@pytest.mark.django_db
def test_a_manual_run_queues_behind_the_running_one_and_starts_after_it(duck, admin,
                                                                     django_capture_on_commit_callbacks):
    commit_to_main({"models/a.sql": "select 1 as id"})
    going = runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 16, tzinfo=dt.UTC))
    queued = runs.request_run(admin, select="a")
    assert queued.status == "queued"
    drain(going)
    # its start is sent through the outbox, so a broker down at this moment does not lose it
    assert OutboxTask.objects.filter(task="runner.tasks.start_run", arg=queued.pk).exists()
    runs.start_run(queued)
    assert drain(queued).status == "success"


@pytest.mark.django_db
def test_a_failed_test_keeps_the_old_table_and_retry_rebuilds_it(duck, admin):
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select 1 as id",
                    "models/b.sql": "select * from {{ ref('a') }}",
                    "models/a.yml": "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n"
                                    "        data_tests: [not_null]\n"})
    assert drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 17, tzinfo=dt.UTC))
                 ).status == "success"
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select null::int as id union all select 2"})
    failed = drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)))
    got = statuses(failed)
    assert got["a"] == "error" and got["not_null_a_id"] == "fail" and got["b"] == "skipped"
    assert duck.rows("select id from analytics.a") == [(1,)]  # the old table kept serving
    assert Incident.objects.filter(subject="a").exists()
    # fixed on main, then Retry: the failed model and what it skipped are built again
    commit_to_main({"models/a.sql": "{{ config(materialized='table') }}select 3 as id"})
    retry = drain(runs.retry_run(admin, failed))
    assert retry.retry_of_id == failed.pk and set(statuses(retry)) == {"a", "b", "not_null_a_id"}
    assert retry.status == "success"
    assert duck.rows("select id from analytics.a") == [(3,)]
    assert not Incident.objects.exclude(status="resolved").filter(subject="a").exists()  # resolved by the success


@pytest.mark.django_db
def test_on_failure_continue_lets_children_run_on_the_old_data(duck):
    commit_to_main({"models/a.sql": "{{ config(materialized='table', meta={'on_failure': 'continue'}) }}select 1 as id",
                    "models/b.sql": "{{ config(materialized='table') }}select * from {{ ref('a') }}"})
    drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 19, tzinfo=dt.UTC)))
    commit_to_main({"models/a.sql": "{{ config(materialized='table', meta={'on_failure': 'continue'}) }}"
                                    "select no_such as id"})
    run = drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 20, tzinfo=dt.UTC)))
    assert statuses(run) == {"a": "error", "b": "success"}


@pytest.mark.django_db
def test_meta_retries_run_a_failing_model_again(duck):
    commit_to_main({"models/a.sql": "{{ config(materialized='table', meta={'retries': 2}) }}select no_such as id"})
    run = runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 21, tzinfo=dt.UTC))
    node = NodeRun.objects.get(run=run)
    for _ in range(3):
        runs.execute_node(node.pk, worker="test")
        node.refresh_from_db()
        if node.status == "queued":
            assert "trying again" in node.message
    assert node.status == "error" and node.attempts == 3


@pytest.mark.django_db
def test_the_reconciler_requeues_the_node_of_a_worker_that_stopped(duck):
    commit_to_main({"models/a.sql": "select 1 as id"})
    run = runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 22, tzinfo=dt.UTC))
    node = NodeRun.objects.get(run=run)
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    NodeRun.objects.filter(pk=node.pk).update(status="running", attempts=1, heartbeat_at=long_ago, worker="dead")
    assert runs.reconcile()["requeued"] == 1
    node.refresh_from_db()
    assert node.status == "queued" and "stopped" in node.message
    assert drain(run).status == "success"


@pytest.mark.django_db
def test_incidents_are_acknowledged_assigned_and_resolved_by_admins(duck, admin):
    incident = incidents.report("orders", "model_failed", "boom")
    incidents.acknowledge(admin, incident.pk, "looking")
    incidents.assign(admin, incident.pk, "adam")
    with pytest.raises(Exception, match="Say what was done"):
        incidents.resolve(admin, incident.pk, " ")
    incident = incidents.resolve(admin, incident.pk, "fixed the source")
    assert incident.status == "resolved" and incident.acknowledged_by == admin and incident.assignee == admin
    assert incidents.report("orders", "model_failed", "again").pk != incident.pk  # a new one after resolving


@pytest.mark.django_db
def test_what_runs_next_lists_each_schedule_with_its_models(duck):
    commit_to_main({"models/a.sql": "select 1 as id", "models/b.sql": "select 2 as id"})
    now = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    rows = runs.next_runs(now)
    assert rows[0]["next"] == [dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)] and rows[0]["models"] == ["a", "b"]


def test_a_bad_cron_is_refused_in_plain_words():
    with pytest.raises(Exception, match="five fields"):
        runs.validate_cron("every hour")


@pytest.mark.django_db
def test_a_failure_mails_the_admins_and_the_models_own_hooks(duck, admin, settings, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    import http.server
    import json
    import threading

    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    settings.DMAAS_INCIDENT_WEBHOOK = ""
    try:
        commit_to_main({"models/a.sql": "{{ config(materialized='table', meta={'notify': ['ana@example.com', '"
                                        + url + "']}) }}select no_such as id"})
        with django_capture_on_commit_callbacks(execute=True):
            drain(runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 23, tzinfo=dt.UTC)))
    finally:
        server.shutdown()
    assert len(mailoutbox) == 1 and set(mailoutbox[0].to) == {"adam@example.com", "ana@example.com"}
    assert "incident" in mailoutbox[0].subject and "a (a model failed to build)" in mailoutbox[0].subject
    assert received and received[0]["event"] == "opened" and received[0]["incident"]["subject"] == "a"
