"""The live run page in a real Chromium (issue 7): an admin opens a run whose nodes are queued; the test
runs them one by one as a worker would (runner.runs.execute_node), and the page's statuses, counts and
progress bar follow without a reload (static/js/run.js polls status.json); once the run has failed,
the error line is marked in the SQL and Retry takes the place of Cancel."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from models_service import index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store
from runner import nodes, runs
from runner import warehouse as wh
from runner.models import NodeRun, Schedule
from tests.browser.test_access import log_in
from tests.personas import make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIN = {
    "models/stg.sql": "{{ config(materialized='table') }}select 1 as id union all select 2",
    "models/orders.sql": "select id from {{ ref('stg') }}",
    "models/broken.sql": "{{ config(materialized='table') }}\nselect no_such_column\nfrom {{ ref('stg') }}",
    "models/below.sql": "select * from {{ ref('broken') }}",
}
WAIT = {"timeout": 10_000}  # the page asks every 2 s


@pytest.fixture(autouse=True)
def project(tmp_path, settings, monkeypatch):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse' / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    wh.forget_warehouses()
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()}, "models"), author=PORTAL)
    index.rebuild(store)
    # No broker here: the test is the worker, so the run's messages are not sent anywhere.
    monkeypatch.setattr(nodes, "_send", lambda node_ids, countdown=None: None)
    yield
    wh.forget_warehouses()
    repo_module.forget_stores()


def node_row(page: Page, name: str):
    return page.locator("tbody.node").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def status_of(page: Page, name: str):
    return node_row(page, name).locator('[data-field="status"]')


def test_the_run_page_follows_the_run_without_reloading(page: Page, live_server):
    make_persona("admin")
    run = runs.fire_schedule(Schedule.objects.get().pk, dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    assert run.status == "running" and run.nodes_total == 4
    node = {n.name: n for n in NodeRun.objects.filter(run=run)}

    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    expect(page.get_by_role("heading", name=f"Run #{run.pk}")).to_contain_text("Running")
    page.evaluate("window.notReloaded = true")
    progress = page.locator("#run-progress")
    expect(progress).to_have_js_property("value", 0)
    expect(status_of(page, "stg")).to_have_text("queued")
    expect(status_of(page, "orders")).to_have_text("waiting")
    expect(page.get_by_role("button", name="Cancel the run")).to_be_visible()
    expect(page.get_by_role("button", name="Retry what failed")).to_be_hidden()

    assert runs.execute_node(node["stg"].pk, worker="test-worker") == "success"
    expect(status_of(page, "stg")).to_have_text("built", **WAIT)
    expect(status_of(page, "stg")).to_have_class(re.compile(r"\bbadge-node-success\b"))
    expect(node_row(page, "stg").locator('[data-field="worker"]')).to_have_text("test-worker")
    expect(node_row(page, "stg").locator('[data-field="rows"]')).to_have_text("2")
    expect(status_of(page, "orders")).to_have_text("queued")
    expect(progress).to_have_js_property("value", 1)
    expect(page.locator('[data-count="passed"]')).to_have_text("1")

    for name in ("orders", "broken"):
        runs.execute_node(node[name].pk, worker="test-worker")
    expect(page.get_by_role("heading", name=f"Run #{run.pk}")).to_contain_text("Failed", **WAIT)
    expect(progress).to_have_js_property("value", 4)
    expect(status_of(page, "broken")).to_have_text("error")
    expect(status_of(page, "below")).to_have_text("skipped")
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    expect(page.locator('[data-count="skipped"]')).to_have_text("1")
    broken = NodeRun.objects.get(pk=node["broken"].pk)
    assert broken.error_line
    expect(node_row(page, "broken")).to_contain_text("no_such_column")
    expect(node_row(page, "broken").locator(".node-line")).to_have_text(f"line {broken.error_line}")
    expect(page.locator(f"#sql-{broken.pk}-L{broken.error_line}")).to_have_class(re.compile(r"\bsql-error-line\b"))
    expect(page.get_by_role("button", name="Retry what failed")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel the run")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True  # all of it in place, no reload
