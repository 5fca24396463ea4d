"""Review in a real Chromium with a real Celery worker (issue 6, item 7): a reviewer opens the queue,
reads the diff and the CI results, requests changes; the analyst sees the request in the editor,
fixes the model and submits again; the reviewer approves, and the change is merged and deployed."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import pytest
from celery import Celery, current_app
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

import runner.tasks  # noqa: F401  (registers the tasks with every Celery app)
from models_service import changes, index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.models import ChangeRequest
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from models_service.repo import PORTAL, get_store
from portal.broker import filesystem_transport_options
from runner import preview
from runner import warehouse as wh
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, RunOptions
from runner.engine.project import MappingSource, load_project
from runner.models import ReviewPolicy
from tests.browser.test_access import log_in
from tests.browser.test_editor import open_editor, type_sql
from tests.personas import make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIN = {
    "models/stg_orders.sql": "{{ config(materialized='table') }}\n"
    "select * from (values (1, 'open'), (2, 'shipped'), (3, 'open')) as t(order_id, status)\n",
    "models/orders.sql": "{{ config(materialized='table') }}\nselect order_id, status from {{ ref('stg_orders') }}\n",
    "models/orders.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n"
    "        data_tests: [unique, not_null]\n",
}
SPEC = ModelSpec("orders", columns=[ColumnSpec("order_id", tests=[DataTest("unique"), DataTest("not_null")])])
DUPLICATES = ("{{ config(materialized='table') }}\nselect order_id, status from {{ ref('stg_orders') }}\n"
              "union all select 1, 'open'\n")
FIXED = ("{{ config(materialized='table') }}\nselect order_id, status, 'web' as channel\n"
         "from {{ ref('stg_orders') }}\n")


@pytest.fixture(autouse=True)
def project(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse' / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    wh.forget_warehouses()
    store = get_store()
    sha = store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()}, "orders"),
                       author=PORTAL).sha
    index.rebuild(store)
    manifest = Compiler(load_project(MappingSource(preview.project_files(store, sha))),
                        Target(schema="analytics", type="duckdb")).compile()
    with wh.get_warehouse().build() as adapter:
        assert Executor(manifest, adapter, RunOptions()).run(set(manifest.nodes)).ok
    # A person decides here: with the policy on, the fixed version would be approved on its own.
    ReviewPolicy.objects.update_or_create(pk=1, defaults={"enabled": False, "merge_on_approval": True})
    yield
    wh.forget_warehouses()
    repo_module.forget_stores()


@contextmanager
def worker(tmp_path):
    """A worker like the project's (both queues), on a broker folder of this test's own."""
    app = Celery("dmaas-test-review", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    from portal.celery import app as project_app

    app.conf.update(broker_url="filesystem://localhost//",
                    broker_transport_options=filesystem_transport_options(tmp_path / "broker"),
                    result_backend=None, task_routes=project_app.conf.task_routes)
    previous = current_app._get_current_object()
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30,
                          queues=["celery", runner.tasks.INTERACTIVE_QUEUE]):
            yield app
    finally:
        previous.set_current()
        previous.set_default()
        app.close()


def reload_until(page: Page, locator, text: str, seconds: float = 60) -> None:
    """Reload until `locator` shows `text` (the page is server-rendered; the worker moves things on)."""
    deadline = time.monotonic() + seconds
    while True:
        if text in (locator.text_content() or ""):
            return
        assert time.monotonic() < deadline, f"{text!r} never appeared; last: {locator.text_content()!r}"
        time.sleep(0.5)
        page.reload()


def test_a_reviewer_requests_changes_the_analyst_fixes_and_the_approved_change_deploys(
        page: Page, live_server, tmp_path):
    analyst, reviewer = make_persona("analyst"), make_persona("reviewer")
    with worker(tmp_path):
        change = changes.open_change(analyst, "Orders get a channel")
        changes.save_model(analyst, change, "orders", DUPLICATES, SPEC)
        changes.submit_change(analyst, change)

        # The reviewer finds it in the queue, opens it, reads the diff and the failing test's rows.
        log_in(page, live_server.url, "reviewer")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue").click()
        queue = page.get_by_role("main")
        reload_until(page, queue, "failed")
        page.get_by_role("link", name="Orders get a channel").click()
        expect(page.get_by_role("heading", name="Orders get a channel")).to_be_visible()
        expect(page.locator("#models")).to_contain_text("union all select 1, 'open'")
        ci = page.locator("#ci")
        expect(ci).to_contain_text("unique_orders_order_id")
        expect(ci.locator("table.failing-rows")).to_contain_text("1")
        page.locator("#changes-body").fill("order_id 1 comes twice: drop the union, and add the channel.")
        page.get_by_role("button", name="Request changes").click()
        expect(page.get_by_role("main")).to_contain_text("Changes requested")
        assert ChangeRequest.objects.get(pk=change.pk).state == "changes_requested"

        # The analyst sees the request in the editor, fixes the model, saves and submits again.
        page.context.clear_cookies()
        log_in(page, live_server.url, "analyst")
        open_editor(page, live_server.url, f"change={change.pk}&model=orders")
        expect(page.get_by_role("region", name=re.compile("Changes requested by"))).to_contain_text(
            "order_id 1 comes twice")
        type_sql(page, FIXED)
        page.keyboard.press("ControlOrMeta+s")
        expect(page.locator("#save-status")).to_contain_text("Saved at", timeout=15_000)
        page.get_by_role("button", name="Submit for review").click()
        dialog = page.get_by_role("dialog", name="Submit for review")
        expect(dialog.get_by_role("button", name="Submit")).to_be_enabled(timeout=10_000)
        dialog.get_by_role("button", name="Submit").click()
        expect(page.locator("#save-status")).to_contain_text("Submitted for review", timeout=10_000)

        # The reviewer sees the new version built and passing, approves; the worker merges and deploys.
        page.context.clear_cookies()
        log_in(page, live_server.url, "reviewer")
        page.goto(f"{live_server.url}/review/{change.pk}/")
        reload_until(page, page.locator("#ci"), "Passed")
        expect(page.locator("#models")).to_contain_text("'web' as channel")
        page.get_by_role("button", name="Approve").click()
        reload_until(page, page.get_by_role("main"), "Deployed")
        change.refresh_from_db()
        assert change.state == "merged" and change.merged_sha
    assert reviewer.pk != change.author_id
    with wh.get_warehouse().build() as adapter:
        assert adapter.fetchall("select count(*), min(channel) from analytics.orders") == [(3, "web")]
