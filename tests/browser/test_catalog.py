"""The catalog in a real Chromium (issue 9): an analyst searches for a model from the menu, opens its
page, opens its lineage (drawn in SVG by static/js/lineage.js from the API) and clicks through to a
parent, whose lineage then shows the first model below it; a column's lineage is drawn too."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from models_service import index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store
from tests.browser.test_access import log_in
from tests.catalog.conftest import PROJECT
from tests.personas import make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def project(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in PROJECT.items()}, "catalog"), author=PORTAL)
    index.rebuild(store)
    yield
    repo_module.forget_stores()


def test_find_a_model_open_its_lineage_and_walk_to_a_parent(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    page.get_by_label("Search models, seeds, sources").fill("orders")
    page.get_by_role("button", name="Search").click()
    results = page.locator("li.catalog-result")
    expect(results.first).to_have_attribute("data-name", "orders")
    expect(results.first).to_contain_text("Matched on name")
    results.first.get_by_role("link", name="orders", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("orders")
    expect(page.locator("table.catalog-columns")).to_contain_text("customer_email")
    page.get_by_role("link", name="Open the lineage graph").click()

    graph = page.locator("#lineage-graph svg")
    expect(graph).to_be_visible()
    expect(graph.locator("g.lineage-node.focus")).to_contain_text("orders")
    expect(graph.locator("g.lineage-node")).to_have_count(6)
    expect(graph.locator("path.lineage-edge")).to_have_count(5)
    expect(page.locator("#lineage-graph details.lineage-list")).not_to_have_attribute("open", "")
    # Parents sit left of the model, the model that reads it to the right.
    box = {name: graph.locator(f'g.lineage-node[data-node="{name}"]').bounding_box()
           for name in ("stg_orders", "orders", "revenue")}
    assert box["stg_orders"]["x"] < box["orders"]["x"] < box["revenue"]["x"]

    graph.locator('g.lineage-node[data-node="stg_orders"]').click()
    expect(page).to_have_url(f"{live_server.url}/catalog/stg_orders/lineage/?up=2&down=2")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lineage of stg_orders")
    graph = page.locator("#lineage-graph svg")
    expect(graph.locator("g.lineage-node.focus")).to_contain_text("stg_orders")
    expect(graph.locator('g.lineage-node[data-node="orders"]')).to_be_visible()

    page.get_by_label("Column").select_option("amount_cents")
    page.get_by_role("button", name="Show").click()
    column = page.locator("#column-graph svg")
    expect(column.locator('g.lineage-node[data-node="shop.orders.amount"]')).to_be_visible()
    expect(column.locator('g.lineage-node[data-node="revenue.revenue"]')).to_be_visible()


def test_without_javascript_the_lineage_is_a_list(browser, live_server):
    make_persona("viewer")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/catalog/orders/lineage/")
    expect(page.locator("#lineage-graph svg")).to_have_count(0)
    page.locator("#lineage-graph").get_by_role("link", name="stg_customers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lineage of stg_customers")
    context.close()
