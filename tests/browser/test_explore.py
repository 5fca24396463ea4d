"""Exploring a model in a real Chromium (issue 9): an analyst opens /explore/orders/, sorts the rows,
filters them, draws a line of orders per month (a date axis bucketed), builds a bar chart (Chart.js
draws it on its canvas), saves it, and opens the share link, where the same chart is drawn again."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from models_service import index
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.repo import PORTAL, get_store
from runner import warehouse as wh
from runner.models import Chart
from tests.browser.test_access import log_in
from tests.explore.conftest import MAIN, ROWS, _sql
from tests.personas import make_persona

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHART_DATA = "document.getElementById('explore-chart-canvas').dmaasChart"


@pytest.fixture(autouse=True)
def project(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse' / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    wh.forget_warehouses()
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()}, "models"), author=PORTAL)
    index.rebuild(store)
    values = ", ".join("(" + ", ".join(_sql(v) for v in row) + ")" for row in ROWS)
    with wh.get_warehouse().build() as adapter:
        adapter.execute("create schema if not exists analytics")
        adapter.execute("create table analytics.orders (order_id integer, customer_id integer, amount numeric(10,2), "
                        'ordered_on date, status varchar, email varchar, paid boolean, "Status Note" varchar)')
        adapter.execute(f"insert into analytics.orders values {values}")
    yield
    wh.forget_warehouses()
    repo_module.forget_stores()


def first_column(page: Page) -> list[str]:
    return page.locator("#explore-table tbody tr td:first-child").all_inner_texts()


def test_sort_filter_chart_save_and_share(page: Page, live_server):
    make_persona("analyst")
    log_in(page, live_server.url, "analyst")
    page.goto(f"{live_server.url}/explore/orders/")
    expect(page.locator("#explore-status")).to_contain_text("Rows 1–6 of 6")

    page.get_by_role("button", name="Sort by amount").click()
    expect(page.locator("#explore-table th[aria-sort=ascending]")).to_contain_text("amount")
    assert first_column(page) == ["5", "3", "2", "1", "6", "4"]
    page.get_by_role("button", name="Sort by amount").click()
    expect(page.locator("#explore-table th[aria-sort=descending]")).to_contain_text("amount")
    assert first_column(page)[0] == "4"

    form = page.get_by_role("form", name="Add a filter")
    form.get_by_label("Column").select_option("status")
    form.get_by_label("Condition").select_option("contains")
    form.get_by_label("Value").fill("ship")
    form.get_by_role("button", name="Add filter").click()
    expect(page.locator("#explore-status")).to_contain_text("of 3 matching the filters")
    assert first_column(page) == ["4", "6", "1"]
    expect(page.locator("#explore-filters li")).to_have_text("status contains ship×")

    builder = page.get_by_role("form", name="Build a chart")
    builder.get_by_label("Kind").select_option("line")
    builder.get_by_label("X axis").select_option("ordered_on")  # a date: it may be bucketed
    builder.get_by_label("Per").select_option("month")
    builder.get_by_role("button", name="Draw the chart").click()
    expect(page.locator("#explore-chart-status")).to_contain_text("2 values of x")
    monthly = page.evaluate(f"""() => {{ const c = {CHART_DATA};
        return {{ type: c.config.type, labels: c.data.labels, data: c.data.datasets[0].data,
                  axis: c.options.scales.x.title.text, points: c.getDatasetMeta(0).data.length }}; }}""")
    assert monthly == {"type": "line", "labels": ["2024-01-01", "2024-03-01"], "data": [2, 1],
                       "axis": "ordered_on per month", "points": 2}

    builder.get_by_label("Kind").select_option("bar")
    builder.get_by_label("X axis").select_option("status")
    expect(builder.get_by_label("Per")).to_be_hidden()  # text: nothing to bucket
    builder.get_by_label("Aggregate").select_option("sum")
    builder.get_by_label("Y axis").select_option("amount")
    builder.get_by_role("button", name="Draw the chart").click()
    expect(page.locator("#explore-chart-status")).to_contain_text("2 values of x")
    drawn = page.evaluate(f"""() => {{ const c = {CHART_DATA};
        return {{ type: c.config.type, labels: c.data.labels, data: c.data.datasets[0].data,
                  width: c.width, bars: c.getDatasetMeta(0).data.length }}; }}""")
    assert drawn["type"] == "bar" and drawn["width"] > 0 and drawn["bars"] == 2
    assert dict(zip(drawn["labels"], drawn["data"], strict=True)) == {"Shipped": 19.99, "shipped": 52.5}

    save = page.get_by_role("form", name="Save the chart")
    save.get_by_label("Title").fill("Shipped amounts")
    save.get_by_role("button", name="Save the chart").click()
    link = page.locator("#explore-save-status a")
    expect(link).to_have_text("Shipped amounts")
    chart = Chart.objects.get()
    assert (chart.kind, chart.x, chart.y, chart.aggregate, chart.bucket) == ("bar", "status", "amount", "sum", "")
    assert chart.filters == [{"column": "status", "op": "contains", "value": "ship"}]
    expect(page.locator("#explore-saved")).to_contain_text("Shipped amounts")

    link.click()
    expect(page).to_have_url(f"{live_server.url}/charts/{chart.pk}/")
    expect(page.get_by_role("heading", name="Shipped amounts")).to_be_visible()
    expect(page.locator("#explore-chart-status")).to_contain_text("2 values of x")
    shared = page.evaluate(f"() => {CHART_DATA}.data.datasets[0].data")
    assert sorted(shared) == [19.99, 52.5]
