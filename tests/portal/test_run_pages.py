"""The run monitoring and incident pages (issue 7), on a real data-models repository and a DuckDB
warehouse: the run history with its filters, one run with its nodes and status.json, retry and cancel,
what runs next, the schedules and their form, the incidents with their admin forms, and a model's
past, now and next on its history page. Nodes are run here as a worker runs them (`drain`)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from models_service import index
from models_service import repo as repo_module
from models_service.repo import get_store
from portal.views.runs import cron_words, duration_words
from runner import incidents, runs
from runner import warehouse as wh
from runner.models import Incident, NodeRun, Run, Schedule
from tests.personas import make_user
from tests.runner.conftest import commit_to_main as _commit
from tests.runner.conftest import duckdb_warehouse

pytestmark = pytest.mark.django_db

# Five models; `invalid` fails to build (on line 2 of its SQL) and `skip`, below it, is skipped.
MODELS = {
    "models/a.sql": "{{ config(materialized='table') }}select 1 as id",
    "models/b.sql": "select * from {{ ref('a') }}",
    "models/c.sql": "select 2 as id",
    "models/invalid.sql": "{{ config(materialized='table') }}\nselect no_such_column\nfrom {{ ref('a') }}",
    "models/skip.sql": "select * from {{ ref('invalid') }}",
}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def repo(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield
    repo_module.forget_stores()


@pytest.fixture
def duck(tmp_path, settings):
    wh.forget_warehouses()
    yield duckdb_warehouse(tmp_path, settings)
    wh.forget_warehouses()


@pytest.fixture
def adam(db):
    return make_user("adam", "admin", first_name="Adam", last_name="Admin")


def commit_to_main(files: dict[str, str]) -> str:
    sha = _commit(files)
    index.rebuild(get_store())
    return sha


def drain(run: Run) -> Run:
    """Run the queued nodes one by one, as workers would, until the run is done."""
    for _ in range(200):
        node = NodeRun.objects.filter(run=run, status="queued").order_by("id").first()
        if node is None:
            break
        runs.execute_node(node.pk, worker="test-worker")
    run.refresh_from_db()
    return run


def hourly(hour: int) -> Run:
    return runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, hour, tzinfo=dt.UTC))


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def run_ids(response) -> list[int]:
    table = text(response).split('<table class="runs-table">', 1)[1].split("</table>", 1)[0]
    return [int(n) for n in re.findall(r'<a href="/runs/(\d+)/">#', table)]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


# --------------------------------------------------------------------------- the history


def test_the_history_lists_runs_newest_first_with_node_counts_and_filters(duck, adam, viewer):
    commit_to_main(MODELS)
    failed = drain(hourly(10))
    by_hand = drain(runs.request_run(adam, select="c"))
    assert (failed.status, by_hand.status) == ("failed", "success")
    client = client_for(viewer)
    page = client.get("/runs/")
    assert page.status_code == 200 and run_ids(page) == [by_hand.pk, failed.pk]
    body = text(page)
    row = body.split(f'<a href="/runs/{failed.pk}/">', 1)[1].split("</tr>", 1)[0]
    assert "Hourly production run" in row and "badge-run-failed" in row and "2026-12-01 11:00" in row  # Berlin
    cells = re.findall(r'<td class="num">(?:<strong class="count-\w+">)?(\d+)', row)
    assert cells == ["3", "1", "1"]  # passed, failed, skipped
    assert "by hand" in body.split(f'<a href="/runs/{by_hand.pk}/">', 1)[1].split("</tr>", 1)[0]
    assert "Run now" not in body  # a viewer starts nothing
    assert run_ids(client.get("/runs/?status=failed")) == [failed.pk]
    assert run_ids(client.get("/runs/?schedule=none")) == [by_hand.pk]
    assert run_ids(client.get(f"/runs/?schedule={Schedule.objects.get().pk}")) == [failed.pk]
    assert run_ids(client.get("/runs/?model=skip")) == [failed.pk]  # the run that had a node `skip`
    assert run_ids(client.get("/runs/?model=c")) == [by_hand.pk, failed.pk]
    assert "No run matches these filters" in text(client.get("/runs/?model=nothing_like_it"))
    assert run_ids(client.get("/runs/?status=bogus&schedule=x")) == [by_hand.pk, failed.pk]  # unknown: ignored


def test_the_history_costs_the_same_queries_for_few_or_many_runs(adam, django_assert_max_num_queries):
    client = client_for(adam)

    def add_runs(count: int) -> None:
        for _ in range(count):
            run = Run.objects.create(target="analytics", status="failed", trigger="manual")
            NodeRun.objects.bulk_create([
                NodeRun(run=run, unique_id=f"model.p.m{i}", name=f"m{i}", resource_type="model", status=status)
                for i, status in enumerate(("success", "error", "skipped"))])

    add_runs(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/runs/").status_code == 200
    add_runs(40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/runs/?model=m1")
    assert len(run_ids(page)) == 42


def test_the_history_pages_by_fifty(adam):
    Run.objects.bulk_create([Run(target="analytics", status="success", trigger="manual") for _ in range(55)])
    client = client_for(adam)
    first = client.get("/runs/?status=success")
    assert len(run_ids(first)) == 50 and "Page 1 of 2" in text(first)
    assert 'href="?status=success&amp;page=2"' in text(first)
    assert len(run_ids(client.get("/runs/?status=success&page=2"))) == 5


def test_an_admin_runs_now_from_the_history(duck, adam):
    commit_to_main(MODELS)
    client = client_for(adam)
    assert "Run now" in text(client.get("/runs/"))
    response = client.post("/runs/new/", {"select": "a+", "exclude": "invalid"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert (run.trigger, run.select, run.exclude, run.requested_by) == ("manual", "a+", "invalid", adam)
    assert set(NodeRun.objects.filter(run=run).values_list("name", flat=True)) == {"a", "b", "skip"}
    # a selection it cannot read comes back with the text typed and the reason
    response = client.post("/runs/new/", {"select": "a++"}, follow=True)
    assert "Cannot read the selector" in text(response) and 'value="a++"' in text(response)
    assert Run.objects.count() == 1


# --------------------------------------------------------------------------- one run


def test_the_run_page_shows_the_nodes_in_plan_order_and_the_error_line(duck, analyst):
    commit_to_main(MODELS)
    run = drain(hourly(10))
    bad = NodeRun.objects.get(run=run, name="invalid")
    assert bad.status == "error" and bad.error_line
    page = client_for(analyst).get(f"/runs/{run.pk}/")
    body = text(page)
    assert page.status_code == 200 and "badge-run-failed" in body
    names = re.findall(r'<th scope="row" class="node-name">(\w+)</th>', body)
    assert names == list(NodeRun.objects.filter(run=run).order_by("id").values_list("name", flat=True))
    assert names.index("a") < names.index("b") and names.index("invalid") < names.index("skip")
    assert f'<progress id="run-progress" max="{run.nodes_total}" value="{run.nodes_total}">' in body
    assert run.sha[:10] in body and "2026-12-01 11:00" in body
    part = body.split(f'data-node="{bad.pk}"', 1)[1].split("</tbody>", 1)[0]
    assert "badge-node-error" in part and "no_such_column" in part and f"line {bad.error_line}</a>" in part
    assert f'id="sql-{bad.pk}-L{bad.error_line}"' in part
    highlighted = re.search(r'<span class="sql-line sql-error-line" id="sql-\d+-L(\d+)">(.*?)\n</span>', part, re.S)
    assert highlighted and int(highlighted.group(1)) == bad.error_line
    assert "<details class=\"node-sql\" open>" in part  # the failing node's SQL is shown open
    skipped = body.split(f'data-node="{NodeRun.objects.get(run=run, name="skip").pk}"', 1)[1].split("</tbody>", 1)[0]
    assert "badge-node-skipped" in skipped and "skipped because invalid failed" in skipped
    assert "Retry what failed" not in body and "Cancel the run" not in body  # analysts only watch
    assert client_for(analyst).get("/runs/999999/").status_code == 404


def test_status_json_says_how_far_the_run_is_and_each_nodes_state(duck, viewer):
    commit_to_main(MODELS)
    run = hourly(10)
    client = client_for(viewer)
    data = client.get(f"/runs/{run.pk}/status.json").json()
    assert (data["status"], data["finished"], data["counts"]["total"], data["counts"]["done"]) == (
        "running", False, 5, 0)
    by_id = {n["id"]: n for n in data["nodes"]}
    a = NodeRun.objects.get(run=run, name="a")
    assert by_id[a.pk]["status"] == "queued" and by_id[a.pk]["status_label"] == "queued"
    runs.execute_node(a.pk, worker="w1")
    data = client.get(f"/runs/{run.pk}/status.json").json()
    cell = {n["id"]: n for n in data["nodes"]}[a.pk]
    assert (cell["status"], cell["status_label"], cell["worker"], cell["attempts"], cell["rows"]) == (
        "success", "built", "w1", "1", "1")
    assert cell["seconds"] and data["counts"]["done"] == 1 and data["counts"]["passed"] == 1
    drain(run)
    data = client.get(f"/runs/{run.pk}/status.json").json()
    assert data["finished"] is True and data["status"] == "failed" and data["retryable"] is True
    assert data["counts"] == {"total": 5, "done": 5, "passed": 3, "failed": 1, "skipped": 1, "running": 0,
                              "waiting": 0}
    bad = next(n for n in data["nodes"] if n["error_line"])
    assert bad["line"] == f"line {bad['error_line']}" and "no_such_column" in bad["message"]
    missing = client.get("/runs/999999/status.json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_only_admins_retry_and_cancel(duck, adam, analyst, reviewer, viewer):
    commit_to_main(MODELS)
    run = drain(hourly(10))
    for user in (analyst, reviewer, viewer):
        client = client_for(user)
        assert client.post(f"/runs/{run.pk}/retry/").status_code == 403
        assert client.post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert Run.objects.count() == 1


def test_an_admin_retries_what_failed(duck, adam):
    commit_to_main(MODELS)
    failed = drain(hourly(10))
    client = client_for(adam)
    page = text(client.get(f"/runs/{failed.pk}/"))
    assert "Retry what failed" in page and re.search(r'data-when="cancellable"\s+hidden', page)
    commit_to_main({"models/invalid.sql": "{{ config(materialized='table') }}select id from {{ ref('a') }}"})
    response = client.post(f"/runs/{failed.pk}/retry/")
    retry = Run.objects.get(retry_of=failed)
    assert response.status_code == 302 and response["Location"] == f"/runs/{retry.pk}/"
    assert drain(retry).status == "success"
    assert set(NodeRun.objects.filter(run=retry).values_list("name", flat=True)) == {"invalid", "skip"}
    page = text(client.get(f"/runs/{retry.pk}/"))
    assert f'retry of <a href="/runs/{failed.pk}/">#{failed.pk}</a>' in page
    assert run_ids(client.get("/runs/"))[0] == retry.pk
    # nothing failed in the retry: retrying it is refused, with the reason
    response = client.post(f"/runs/{retry.pk}/retry/", follow=True)
    assert "Nothing failed in this run" in text(response) and Run.objects.count() == 2


def test_an_admin_cancels_a_running_run(duck, adam):
    commit_to_main(MODELS)
    run = hourly(10)
    client = client_for(adam)
    page = text(client.get(f"/runs/{run.pk}/"))
    assert "Cancel the run" in page and re.search(r'data-when="retryable"\s+hidden', page)
    response = client.post(f"/runs/{run.pk}/cancel/", follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled" and "cancelled by adam" in run.message
    assert set(NodeRun.objects.filter(run=run).values_list("status", flat=True)) == {"skipped"}
    assert "Cancelled" in text(response)
    response = client.post(f"/runs/{run.pk}/cancel/", follow=True)  # a second time: it says why not
    assert "has cancelled already" in text(response)


# --------------------------------------------------------------------------- what runs next, schedules


def test_what_runs_next_lists_each_schedule_its_times_models_and_duration(duck, viewer, adam):
    commit_to_main(MODELS)
    drain(hourly(10))
    runs.save_schedule(adam, None, name="After hourly", cron="", select="c", after=Schedule.objects.get(name=
                       "Hourly production run"))
    page = client_for(viewer).get("/runs/next/")
    body = text(page)
    assert page.status_code == 200 and "Hourly production run" in body and "After hourly" in body
    hourly_part = body.split("<h2>Hourly production run</h2>", 1)[1].split("</li>\n", 1)[0]
    assert "5 models" in hourly_part and "every hour, on the hour" in hourly_part
    assert hourly_part.count("<time ") == 3 and ":00</time>" in hourly_part
    assert "<strong>After hourly</strong> runs after it" in hourly_part
    assert re.search(r"Takes about</dt><dd>(under a second|[\d.]+ s)", hourly_part)
    after_part = body.split("<h2>After hourly</h2>", 1)[1]
    assert "after each run of <strong>Hourly production run</strong>" in after_part and "1 model<" in after_part


def test_cron_lines_in_plain_words():
    assert cron_words("0 * * * *") == "every hour, on the hour"
    assert cron_words("*/15 * * * *") == "every 15 minutes"
    assert cron_words("30 6 * * 1-5") == "Monday to Friday at 06:30"
    assert cron_words("0 6,18 * * *") == "every day at 06:00, 18:00"
    assert cron_words("0 2 * * 0") == "every Sunday at 02:00"
    assert cron_words("0 3 1 * *") == "on day 1 of every month at 03:00"
    assert cron_words("5 4 * 2 *") == ""  # beyond these shapes: the next time says it
    assert duration_words(4.25) == "4.2 s" and duration_words(185) == "3 min 5 s" and duration_words(7300) == \
        "2 h 1 min"


def test_the_schedules_page_lists_schedules_and_gives_admins_their_forms(duck, adam, viewer):
    commit_to_main(MODELS)
    run = drain(hourly(10))
    page = text(client_for(viewer).get("/schedules/"))
    assert "Hourly production run" in page and "<code>0 * * * *</code>" in page and "every hour" in page
    assert f'<a href="/runs/{run.pk}/">#{run.pk}</a> <span class="badge badge-run-failed">Failed</span>' in page
    assert "New schedule" not in page and "Edit" not in page and "Run now" not in page
    assert client_for(viewer).get("/schedules/new/").status_code == 403
    page = text(client_for(adam).get("/schedules/"))
    assert "New schedule" in page and "Run now" in page and "Edit<span" in page


def test_a_bad_cron_is_shown_at_its_field_and_nothing_typed_is_lost(adam):
    client = client_for(adam)
    assert client.get("/schedules/new/").status_code == 200
    typed = {"name": "Nightly", "cron": "every night", "select": "tag:nightly", "exclude": "big_one",
             "after": "", "on_overlap": "queue", "enabled": "on"}
    response = client.post("/schedules/new/", typed)
    body = text(response)
    assert response.status_code == 400 and not Schedule.objects.filter(name="Nightly").exists()
    cron_input = re.search(r'<input type="text" id="id_cron"[^>]*>', body).group(0)
    assert 'value="every night"' in cron_input and 'aria-invalid="true"' in cron_input
    assert re.search(r'<span class="error" id="id_cron-error" role="alert">[^<]*five fields', body)
    for value in ('value="Nightly"', 'value="tag:nightly"', 'value="big_one"', '<option value="queue" selected>'):
        assert value in body
    response = client.post("/schedules/new/", {**typed, "cron": "0 2 * * *"})
    nightly = Schedule.objects.get(name="Nightly")
    assert response.status_code == 302 and response["Location"] == "/schedules/"
    assert (nightly.cron, nightly.select, nightly.exclude, nightly.on_overlap) == ("0 2 * * *", "tag:nightly",
                                                                                 "big_one", "queue")
    assert PeriodicTask.objects.get(name=f"dmaas-schedule-{nightly.pk}").crontab.hour == "2"


def test_an_admin_edits_a_schedule_and_errors_stay_at_their_field(adam):
    hourly_schedule = Schedule.objects.get()
    client = client_for(adam)
    page = text(client.get(f"/schedules/{hourly_schedule.pk}/edit/"))
    assert 'value="Hourly production run"' in page and 'value="0 * * * *"' in page
    assert f'<option value="{hourly_schedule.pk}"' not in page  # not after itself
    body = {"name": "Hourly production run", "cron": "15 * * * *", "select": "a++", "exclude": "",
            "after": "", "on_overlap": "skip", "enabled": "on"}
    response = client.post(f"/schedules/{hourly_schedule.pk}/edit/", body)
    assert response.status_code == 400 and 'id="id_select-error"' in text(response)
    assert 'value="15 * * * *"' in text(response)
    hourly_schedule.refresh_from_db()
    assert hourly_schedule.cron == "0 * * * *"
    response = client.post(f"/schedules/{hourly_schedule.pk}/edit/", {**body, "select": "", "enabled": ""})
    hourly_schedule.refresh_from_db()
    assert response.status_code == 302 and (hourly_schedule.cron, hourly_schedule.enabled) == ("15 * * * *", False)
    assert client.get("/schedules/999999/edit/").status_code == 404


def test_run_now_on_a_schedule_runs_its_selection(duck, adam, analyst):
    commit_to_main(MODELS)
    schedule = runs.save_schedule(adam, None, name="Only c", cron="0 3 * * *", select="c")
    assert client_for(analyst).post(f"/schedules/{schedule.pk}/run/").status_code == 403
    response = client_for(adam).post(f"/schedules/{schedule.pk}/run/")
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert (run.schedule, run.trigger, run.select) == (schedule, "manual", "c")
    assert "(run by hand)" in text(client_for(adam).get(f"/runs/{run.pk}/"))


# --------------------------------------------------------------------------- incidents


def incident_subjects(response) -> list[str]:
    table = text(response).split('<table class="incidents-table">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/incidents/\d+/">([^<]+)</a>', table)


def test_the_incident_list_shows_open_ones_first_in_tabs(adam, analyst, viewer):
    incidents.report("orders", "model_failed", "boom")
    acked = incidents.report("customers", "test_failed", "not_null_customers_id: 3 rows")
    done = incidents.report("payments", "model_failed", "gone")
    incidents.acknowledge(adam, acked.pk, "on it")
    incidents.resolve(adam, done.pk, "fixed the source")
    Incident.objects.filter(pk=done.pk).update(last_failure_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    client = client_for(analyst)
    page = client.get("/incidents/")
    assert page.status_code == 200 and incident_subjects(page) == ["customers", "orders"]
    assert "Open <span class=\"count\">(2)</span>" in text(page) and "(1)" in text(page)
    assert "badge-incident-acknowledged" in text(page) and "A data test failed" in text(page)
    assert incident_subjects(client.get("/incidents/?status=resolved")) == ["payments"]
    assert incident_subjects(client.get("/incidents/?status=all")) == ["customers", "orders", "payments"]
    assert client_for(viewer).get("/incidents/").status_code == 403
    empty = client.get("/incidents/?status=open")
    Incident.objects.all().delete()
    assert "No open incident" in text(client.get("/incidents/")) and empty.status_code == 200


def test_an_admin_acknowledges_assigns_and_resolves_an_incident(duck, adam, analyst):
    commit_to_main(MODELS)
    run = drain(hourly(10))
    incident = Incident.objects.get(subject="invalid")
    page = text(client_for(analyst).get(f"/incidents/{incident.pk}/"))
    assert "no_such_column" in page and f'<a href="/runs/{run.pk}/">Run #{run.pk}</a>' in page
    assert '<a href="/models/invalid/history/">invalid</a>' in page and "Not acknowledged yet" in page
    assert "Acknowledge" not in page  # analysts read; admins act
    assert client_for(analyst).post(f"/incidents/{incident.pk}/acknowledge/", {"note": "x"}).status_code == 403

    client = client_for(adam)
    assert '<option value="analyst">' in text(client.get(f"/incidents/{incident.pk}/"))
    response = client.post(f"/incidents/{incident.pk}/acknowledge/", {"note": "Looking at the source"})
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    client.post(f"/incidents/{incident.pk}/assign/", {"assignee": "analyst"})
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by, incident.assignee) == ("acknowledged", adam, analyst)
    response = client.post(f"/incidents/{incident.pk}/assign/", {"assignee": "nobody_like_that"}, follow=True)
    assert "There is no active user" in text(response)

    response = client.post(f"/incidents/{incident.pk}/resolve/", {"resolution": "   "})
    assert response.status_code == 400
    assert re.search(r'<p class="error" id="resolution-error" role="alert">Say what was done', text(response))
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    response = client.post(f"/incidents/{incident.pk}/resolve/", {"resolution": "Dropped the column"}, follow=True)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_by == adam
    page = text(response)
    assert "Acknowledged</strong> by adam" in page and "Looking at the source" in page
    assert "Resolved</strong> by adam" in page and "Dropped the column" in page
    assert "Act on it" not in page  # nothing left to do
    response = client.post(f"/incidents/{incident.pk}/acknowledge/", follow=True)
    assert "resolved already" in text(response)
    assert client.get("/incidents/999999/").status_code == 404


# --------------------------------------------------------------------------- a model's past, now and next


def test_a_models_history_shows_its_last_runs_now_and_next(duck, analyst, viewer):
    commit_to_main(MODELS)
    drain(hourly(10))
    later = hourly(11)
    page = text(client_for(analyst).get("/models/invalid/history/"))
    section = page.split('<section class="model-runs"', 1)[1].split("</section>", 1)[0]
    assert "In production" in section and "badge-node-queued" not in section  # not started: waits for a
    assert "Not built in production yet" not in section and '<span class="badge badge-node-error">error</span>' \
        in section
    assert section.count("<rect ") == 1 and "<title>run #" in section
    assert "with Hourly production run" in section
    incident = Incident.objects.get(subject="invalid")
    assert f'<a href="/incidents/{incident.pk}/">open incident' in section
    a = NodeRun.objects.get(run=later, name="a")
    NodeRun.objects.filter(pk=a.pk).update(status="running")
    section = text(client_for(viewer).get("/models/a/history/")).split('<section class="model-runs"', 1)[1]
    assert f'running</span> in <a href="/runs/{later.pk}/">run #{later.pk}</a>' in section
    assert section.split("</section>", 1)[0].count("<rect ") == 1
    viewer_page = text(client_for(viewer).get("/models/invalid/history/"))
    assert "an incident is open" in viewer_page and "/incidents/" not in viewer_page  # viewers cannot open it


def test_a_model_never_run_says_so(duck, analyst):
    commit_to_main(MODELS)
    section = text(client_for(analyst).get("/models/c/history/")).split('<section class="model-runs"', 1)[1]
    assert "Not built in production yet" in section and "not running" in section and "<svg" not in section


# --------------------------------------------------------------------------- escaping


def test_names_and_errors_from_the_warehouse_are_escaped(adam):
    run = Run.objects.create(target="analytics", status="failed", trigger="manual", message=SCRIPT)
    node = NodeRun.objects.create(run=run, unique_id="model.p.x", name=SCRIPT, resource_type="model",
                                  status="error", message=f"boom {SCRIPT}", error_line=1,
                                  compiled_sql=f"select '{SCRIPT}'")
    incident = incidents.report(SCRIPT, "model_failed", f"Error {SCRIPT}", run=run)
    client = client_for(adam)
    for url in ("/runs/", f"/runs/{run.pk}/", "/incidents/", f"/incidents/{incident.pk}/", "/runs/?model=" + SCRIPT):
        body = text(client.get(url))
        assert SCRIPT not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
    status = client.get(f"/runs/{run.pk}/status.json")
    assert status["Content-Type"] == "application/json"
    assert json.loads(status.content)["nodes"][0]["message"] == f"boom {SCRIPT}"  # run.js sets it as text
    assert node.pk == json.loads(status.content)["nodes"][0]["id"]
