"""The analyst's editor in a real Chromium (issue 5, item 8): type a model with a mistake and see it
underlined at its line, fix it, preview rows, fill in the details, save with Ctrl+S, find the save on
the change, and submit it for review. Also: errors block submitting, a conflicting save loses nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from models_service import changes, index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.models import ChangeRequest
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from models_service.repo import PORTAL, get_store
from runner import warehouse as wh
from tests.browser.test_access import log_in
from tests.personas import make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIN = {
    "models/staging/stg_orders.sql": "select 1 as order_id, 12.5 as amount, 'shipped' as status\n",
    "models/staging/stg_orders.yml": (
        "version: 2\nmodels:\n  - name: stg_orders\n    columns:\n      - name: order_id\n"
        "      - name: amount\n      - name: status\n"
    ),
    "models/marts/orders_report.sql": "select status, count(*) as orders\nfrom {{ ref('stg_orders') }}\ngroup by 1\n",
}


@pytest.fixture(autouse=True)
def project(tmp_path, settings):
    """A fresh data-models repository with stg_orders on main, and a DuckDB warehouse where production
    has built it."""
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse' / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    wh.forget_warehouses()
    store = get_store()
    store.commit(
        MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()}, "stg_orders"), author=PORTAL
    )
    index.rebuild(store)
    with wh.get_warehouse().build() as adapter:
        for statement in (
            "create schema if not exists analytics",
            "create table analytics.stg_orders (order_id integer, amount decimal(10,2), status varchar)",
            "insert into analytics.stg_orders values (1, 12.50, 'shipped'), (2, 7.25, 'placed'), (3, 3.00, 'placed')",
        ):
            adapter.execute(statement)
    yield
    wh.forget_warehouses()
    repo_module.forget_stores()


def editor_text(page: Page) -> str:
    return page.evaluate("() => document.getElementById('sql-editor').editorView.state.doc.toString()")


def type_sql(page: Page, sql: str) -> None:
    """Type into CodeMirror as a person pasting would (no auto-closed brackets, no completion popup)."""
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(sql)
    page.keyboard.press("Escape")  # close a completion list, if one opened


def line_of(page: Page, locator) -> int:
    """The 1-based editor line that holds the first element `locator` finds."""
    return locator.first.evaluate(
        "el => [...document.querySelectorAll('.cm-content > .cm-line')].indexOf(el.closest('.cm-line')) + 1"
    )


def open_editor(page: Page, base: str, query: str) -> None:
    page.goto(f"{base}/editor/?{query}")
    expect(page.locator("#editor-page[data-ready=true]")).to_be_attached()


def test_an_analyst_writes_checks_previews_saves_and_submits_a_model(page: Page, live_server):
    analyst = make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Editor").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    expect(page.locator("#model-list")).to_contain_text("stg_orders")

    # A new model, named through the dialog.
    page.get_by_role("button", name="New model").click()
    page.get_by_label("Model name").fill("order_revenue")
    page.get_by_role("dialog").get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="order_revenue", exact=True)).to_be_visible()
    expect(page.locator("#editor-page[data-ready=true]")).to_be_attached()

    # A mistake on line 4: a model that does not exist. It is underlined there and listed below.
    type_sql(page, "select\n  order_id,\n  amount\nfrom {{ ref('stg_order') }}\nwhere status = 'shipped'\n")
    expect(page.locator("#save-status")).to_have_text("Unsaved changes")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the editor is {overflow}px too wide"
    problems = page.locator("#problems-list")
    expect(problems.locator(".problem-error")).to_have_count(1, timeout=10_000)
    expect(problems).to_contain_text("Line 4")
    expect(problems).to_contain_text("stg_order")
    underline = page.locator(".cm-lintRange-error")
    expect(underline).to_have_count(1)
    assert line_of(page, underline) == 4

    # One click on the offered fix (or, when none is offered, a correction by hand) clears it.
    fix = problems.locator(".fix-button").filter(has_text="stg_orders")
    if fix.count():
        fix.first.click()
    else:
        type_sql(page, editor_text(page).replace("stg_order'", "stg_orders'"))
    assert "ref('stg_orders')" in editor_text(page)
    expect(page.locator("#problems-status")).to_contain_text("No problems found", timeout=10_000)
    expect(page.locator(".cm-lintRange-error")).to_have_count(0)

    # Ctrl+Enter previews: column names and types, rows, row count and time.
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+Enter")
    grid = page.locator("#preview-grid table")
    expect(grid).to_be_visible(timeout=15_000)
    expect(grid.locator("thead th")).to_have_count(2)
    expect(grid.locator("thead th").first).to_contain_text("order_id")
    expect(grid.locator("thead th").first).to_contain_text(re.compile("int", re.I))
    expect(grid.locator("tbody tr")).to_have_count(1)
    expect(grid.locator("tbody")).to_contain_text("12.50")
    expect(page.locator("#preview-status")).to_contain_text(re.compile(r"1 row, in \d+ ms"))

    # The details: a description and a column that must never be empty.
    page.get_by_label("Description", exact=True).fill("Revenue of shipped orders.")
    page.get_by_role("button", name="Add column").click()
    column = page.get_by_role("group", name="Column 1")
    column.get_by_label("Name").fill("order_id")
    column.get_by_label("Description").fill("The order.")
    column.get_by_label("Never empty").check()
    page.get_by_label("Kept as").select_option("table")
    page.get_by_label("Owner").fill("finance")

    # Ctrl+S saves; the first save opens a change.
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+s")
    expect(page.locator("#save-status")).to_contain_text("Saved at", timeout=15_000)
    expect(page).to_have_url(re.compile(r"/editor/\?change=\d+&model=order_revenue$"))
    change = ChangeRequest.objects.get(author=analyst)
    assert change.title == "Edit order_revenue"
    saved = changes_api(page, live_server.url, f"/api/v1/changes/{change.pk}/models/order_revenue")
    assert "ref('stg_orders')" in saved["sql"]
    props = saved["properties"]
    assert props["description"] == "Revenue of shipped orders."
    assert props["columns"][0]["name"] == "order_id" and "not_null" in props["columns"][0]["data_tests"]
    assert props["config"]["materialized"] == "table" and props["config"]["meta"]["owner"] == "finance"

    # The save is on the change's page, in plain words.
    page.get_by_role("link", name="Edit order_revenue").click()
    expect(page.get_by_role("heading", name="Edit order_revenue")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("order_revenue")
    commits = changes_api(page, live_server.url, f"/api/v1/changes/{change.pk}/commits")
    assert len(commits) == 1 and commits[0]["author"]

    # Back in the editor: the model loads as saved, and is submitted with a title and description.
    open_editor(page, live_server.url, f"change={change.pk}&model=order_revenue")
    expect(page.locator("#save-status")).not_to_have_text("Unsaved changes")
    assert "ref('stg_orders')" in editor_text(page)
    expect(page.get_by_role("group", name="Column 1").get_by_label("Never empty")).to_be_checked()
    page.get_by_role("button", name="Submit for review").click()
    dialog = page.get_by_role("dialog", name="Submit for review")
    expect(dialog.get_by_label("Title")).to_have_value("Edit order_revenue")
    dialog.get_by_label("What it does and why").fill("Finance asked for shipped revenue.")
    expect(dialog.get_by_role("button", name="Submit")).to_be_enabled(timeout=10_000)
    dialog.get_by_role("button", name="Submit").click()
    expect(page.locator("#save-status")).to_contain_text("Submitted for review", timeout=10_000)
    change.refresh_from_db()
    assert change.state == "submitted"


def changes_api(page: Page, base: str, path: str):
    response = page.request.get(f"{base}{path}")
    assert response.ok, response.text()
    return response.json()


def test_errors_block_submitting_but_the_text_is_saved(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    open_editor(page, live_server.url, "model=broken")
    type_sql(page, "select order_id\nfrom {{ ref('no_such_model') }}\n")
    expect(page.locator("#problems-list .problem-error")).not_to_have_count(0, timeout=10_000)
    page.get_by_role("button", name="Submit for review").click()
    dialog = page.get_by_role("dialog", name="Submit for review")
    expect(dialog.get_by_role("alert")).to_contain_text("before submitting", timeout=15_000)
    expect(dialog.get_by_role("button", name="Submit")).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("#save-status")).to_contain_text("Saved")
    change = ChangeRequest.objects.get(title="Edit broken")
    assert change.state == "draft"


def test_a_conflicting_save_shows_both_versions_and_loses_nothing(page: Page, live_server):
    analyst = make_persona("analyst")
    change = changes.open_change(analyst, "Orders work")
    changes.save_model(analyst, change, "stg_orders", "select 1 as order_id\n", ModelSpec("stg_orders"))
    log_in(page, live_server.url, "analyst")
    open_editor(page, live_server.url, f"change={change.pk}&model=stg_orders")
    # Meanwhile the same model is saved elsewhere (another tab, the API).
    changes.save_model(analyst, change, "stg_orders", "select 2 as order_id\n", ModelSpec("stg_orders"))
    type_sql(page, "select 3 as order_id\n")
    page.get_by_role("button", name="Save").first.click()
    conflict = page.get_by_role("alert").filter(has_text="Someone else saved this model")
    expect(conflict).to_be_visible(timeout=10_000)
    expect(conflict.locator("#conflict-theirs")).to_contain_text("select 2")
    expect(conflict.locator("#conflict-mine")).to_contain_text("select 3")
    assert "select 3" in editor_text(page)
    conflict.get_by_role("button", name="Save mine over theirs").click()
    expect(page.locator("#save-status")).to_contain_text("Saved at", timeout=10_000)
    saved = changes_api(page, live_server.url, f"/api/v1/changes/{change.pk}/models/stg_orders")
    assert saved["sql"].strip() == "select 3 as order_id"


def test_completion_offers_models_refs_and_the_columns_in_scope(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    open_editor(page, live_server.url, "model=revenue")
    options = page.locator(".cm-tooltip-autocomplete li")

    type_sql(page, "select * from {{ ref('stg")
    page.keyboard.press("Control+Space")
    expect(options.filter(has_text="stg_orders")).to_have_count(1)
    page.keyboard.press("Escape")

    type_sql(page, "select sta from {{ ref('stg_orders') }}")
    page.keyboard.press("Home")
    for _ in range(len("select sta")):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Control+Space")
    expect(options.filter(has_text="status").first).to_be_visible()
    page.wait_for_timeout(100)  # CodeMirror ignores Enter in the first 75 ms of a list, against slips
    page.keyboard.press("Enter")
    assert editor_text(page).startswith("select status from")

    type_sql(page, "select *\nfrom stg_ord")
    page.keyboard.press("Control+Space")
    expect(options.filter(has_text="stg_orders").first).to_be_visible()
    page.wait_for_timeout(100)
    page.keyboard.press("Enter")
    assert editor_text(page) == "select *\nfrom {{ ref('stg_orders') }}"


def test_test_my_model_shows_each_test_and_the_failing_rows(page: Page, live_server, tmp_path):
    from tests.runner.test_test_my_model import interactive_worker

    analyst = make_persona("analyst")
    change = changes.open_change(analyst, "Checked orders")
    sql = "select order_id, case when order_id = 3 then null else status end as status\nfrom {{ ref('stg_orders') }}\n"
    changes.save_model(
        analyst,
        change,
        "orders_checked",
        sql,
        ModelSpec(
            "orders_checked",
            columns=[
                ColumnSpec("order_id", tests=[DataTest("unique")]),
                ColumnSpec("status", tests=[DataTest("not_null")]),
            ],
        ),
    )
    log_in(page, live_server.url, "analyst")
    open_editor(page, live_server.url, f"change={change.pk}&model=orders_checked")
    expect(page.get_by_role("group", name="Column 2").get_by_label("Never empty")).to_be_checked()
    with interactive_worker(tmp_path):
        page.get_by_role("button", name="Test my model").click()
        status = page.locator("#tests-status")
        expect(status).to_contain_text("Some tests failed.", timeout=60_000)
    steps = page.locator("#tests-steps > li")
    expect(steps).to_have_count(3)
    expect(steps.filter(has_text="not_null_orders_checked_status")).to_contain_text("failed")
    expect(steps.filter(has_text="not_null_orders_checked_status").locator("table")).to_contain_text("null")
    expect(steps.filter(has_text="unique_orders_checked_order_id")).to_contain_text("passed")


def test_rename_and_delete_warn_about_the_models_that_use_it_and_unsaved_text_is_guarded(
    page: Page, live_server
):
    analyst = make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    open_editor(page, live_server.url, "model=stg_orders")
    expect(page.locator("#model-list")).to_contain_text("orders_report")

    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this model?")
    expect(dialog).to_contain_text("These models use stg_orders and will break: orders_report.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename stg_orders")
    expect(dialog).to_contain_text("orders_report")
    dialog.get_by_label("Model name").fill("orders report")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog.get_by_role("alert")).to_contain_text("letters, digits and underscores")
    dialog.get_by_label("Model name").fill("stg_orders_v2")
    dialog.get_by_role("button", name="Rename").click()
    expect(page.locator("#save-status")).to_contain_text(
        "Change these models to use the new name: orders_report"
    )
    expect(page.get_by_role("heading", name="stg_orders_v2")).to_be_visible()
    expect(page).to_have_url(re.compile(r"change=\d+&model=stg_orders_v2$"))
    change = ChangeRequest.objects.get(author=analyst)
    names = [n["name"] for n in changes_api(page, live_server.url, f"/api/v1/changes/{change.pk}/models")]
    assert "stg_orders_v2" in names and "stg_orders" not in names

    # Unsaved text: leaving asks first; staying keeps the text.
    type_sql(page, "select 42 as answer\n")
    asked = []
    page.on("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    page.locator("#model-list").get_by_role("link", name="orders_report").click()
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]
    assert "model=stg_orders_v2" in page.url and "select 42" in editor_text(page)


def test_suggest_proposes_columns_and_tests_from_the_preview(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    page.set_viewport_size({"width": 1280, "height": 800})
    open_editor(page, live_server.url, "model=order_ids")
    type_sql(page, "select order_id, amount from {{ ref('stg_orders') }}")
    page.get_by_role("button", name="Suggest columns and tests").click()
    expect(page.locator("#suggest-status")).to_contain_text("2 columns added", timeout=15_000)
    first = page.get_by_role("group", name="Column 1")
    expect(first.get_by_label("Name")).to_have_value("order_id")
    expect(first.get_by_label("Unique")).to_be_checked()
    expect(first.get_by_label("Never empty")).to_be_checked()
    second = page.get_by_role("group", name="Column 2")
    expect(second.get_by_label("Name")).to_have_value("amount")
    expect(second.get_by_label("Never empty")).to_be_checked()
    expect(second.get_by_label("Unique")).not_to_be_checked()  # an amount is a measure, not a key
    expect(page.locator("#save-status")).to_have_text("Unsaved changes")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the editor is {overflow}px too wide"
