"""The SLA dashboard in a real Chromium (issue 8, item 3): a platform admin opens it, the two Chart.js
charts are drawn from the page's json_script data (static/sla/sla.js), the tables under them carry the
same figures, and choosing another period reloads the numbers.

The facts are made through the services, each at a moment in the past (time_machine), relative to the
real now: per promise one item met long ago and one breached lately, so the default period (the last
4 full weeks and this week) shows 50 % and "last 7 days" shows 0 %.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from models_service import changes, index, review
from models_service import repo as repo_module
from models_service.git_store import MAIN_REF, Edit
from models_service.project_files import ModelSpec
from models_service.repo import PORTAL, get_store
from runner import incidents
from tests.browser.test_access import log_in
from tests.personas import make_persona, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIN = {
    "models/orders.sql": "select 1 as order_id\n",
    "models/customers.sql": "select 10 as customer_id\n",
}


@pytest.fixture(autouse=True)
def project(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_HOLIDAYS = ""  # the figures below must not depend on the day the test runs
    repo_module.forget_stores()
    store = get_store()
    store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()}, "models"), author=PORTAL)
    index.rebuild(store)
    yield
    repo_module.forget_stores()


def facts() -> dt.datetime:
    now = timezone.now()
    ana, rita, adam = make_user("ana", "analyst"), make_user("rita", "reviewer"), make_persona("admin")

    def submitted(title: str, days_ago: float):
        with time_machine.travel(now - dt.timedelta(days=days_ago), tick=False):
            change = changes.open_change(ana, title)
            changes.save_model(ana, change, "customers", f"select {len(title)} as customer_id\n",
                               ModelSpec("customers"))
            return changes.submit_change(ana, change)

    quick = submitted("Reviewed within the hour", 20)
    with time_machine.travel(now - dt.timedelta(days=20) + dt.timedelta(minutes=1), tick=False):
        review.approve_change(rita, quick.pk)
    submitted("Waiting far too long", 10)  # 10 days hold at least 6 working days: over the 3 allowed

    with time_machine.travel(now - dt.timedelta(days=15), tick=False):
        handled = incidents.report("orders", "model_failed", "boom")
    with time_machine.travel(now - dt.timedelta(days=15) + dt.timedelta(minutes=5), tick=False):
        incidents.acknowledge(adam, handled.pk, "on it")
    with time_machine.travel(now - dt.timedelta(days=9), tick=False):
        incidents.report("customers", "model_failed", "boom")  # never acknowledged: breached
    return now


def test_the_dashboard_draws_its_charts_and_follows_the_period(page: Page, live_server, tmp_path):
    now = facts()
    log_in(page, live_server.url, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SLA dashboard").click()
    expect(page.get_by_role("heading", name="Service agreement", exact=True)).to_be_visible()

    reviews = page.locator("#sla-review")
    incidents_card = page.locator("#sla-incident")
    expect(reviews.locator('[data-sla="attainment"]')).to_have_text("50 %")
    expect(incidents_card.locator('[data-sla="attainment"]')).to_have_text("50 %")
    expect(reviews.locator('[data-count="breached"]')).to_have_text("1")
    attention = page.locator("table.sla-attention")
    expect(attention.get_by_role("link", name="Waiting far too long")).to_be_visible()
    expect(attention.get_by_role("row").filter(has_text="Waiting far too long")).to_contain_text("over")

    # The charts: Chart.js made both, on canvases that have a size and pixels drawn.
    page.wait_for_function("window.dmaasCharts && window.dmaasCharts.length === 2")
    expect(page.locator(".sla-charts")).to_be_visible()
    drawn = page.evaluate("""() => window.dmaasCharts.map((chart) => {
        const c = chart.canvas;
        const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return {type: chart.config.type, width: c.clientWidth, height: c.clientHeight, painted,
                datasets: chart.data.datasets.length, labels: chart.data.labels.length};
    })""")
    assert [d["type"] for d in drawn] == ["line", "bar"]
    assert all(d["width"] > 200 and d["height"] > 100 and d["painted"] > 1000 for d in drawn), drawn
    assert drawn[0]["datasets"] == 6 and drawn[1]["datasets"] == 9  # 3 promises (+ targets; x 3 outcomes)
    assert drawn[0]["labels"] >= 4  # the weeks
    # the table under the charts has the same weeks
    expect(page.locator("table.sla-weeks tbody tr")).to_have_count(drawn[0]["labels"])
    page.screenshot(path=str(tmp_path / "sla-dashboard.png"), full_page=True)

    # Another period: the last 7 days hold only the breached items.
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "true")
    expect(reviews.locator('[data-sla="attainment"]')).to_have_text("0 %")
    expect(incidents_card.locator('[data-sla="attainment"]')).to_have_text("0 %")
    page.wait_for_function("window.dmaasCharts && window.dmaasCharts.length === 2")

    # And a period typed in: the quick review's day alone.
    day = timezone.localtime(now - dt.timedelta(days=20)).date().isoformat()
    page.get_by_label("From", exact=True).fill(day)
    page.get_by_label("To", exact=True).fill(day)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{live_server.url}/sla/?from={day}&to={day}")
    expect(reviews.locator('[data-count="met"]')).to_have_text("1")
