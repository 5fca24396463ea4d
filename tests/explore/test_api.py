"""The explore API and pages: answers and errors over HTTP, saved charts (CRUD, the share link, who may
change them), build history, and personal data masked for people without `pii.view`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from models_service.audit import entries
from runner.models import Chart, Measurement, NodeRun, PiiStatus, PiiTag, Run
from runner.observe.pii import MASK
from tests.personas import make_user

pytestmark = pytest.mark.django_db
BASE = "/api/v1/models/orders"
CHART = {"model": "orders", "title": "Orders per status", "kind": "bar", "x": "status", "aggregate": "count"}


def test_rows_by_get_and_by_post_agree(orders_duck, viewer, api_for):
    api = api_for(viewer)
    filters = json.dumps([{"column": "status", "op": "=", "value": "placed"}])
    got = api.get(f"{BASE}/rows", {"filters": filters, "sort": "order_id", "order": "desc"})
    assert got.status_code == 200, got.json()
    assert [r[0] for r in got.json()["rows"]] == [3, 2]
    posted = api.post(f"{BASE}/rows", {"filters": json.loads(filters), "sort": "order_id", "order": "desc"},
                      format="json")
    assert posted.json()["rows"] == got.json()["rows"]


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"filters": "not json"}, "filters", "filters must be JSON"),
    ({"filters": json.dumps([{"column": "x", "op": "=", "value": 1}])}, "filters[0].column", "has no column 'x'"),
    ({"filters": json.dumps([{"column": "status", "op": "~", "value": 1}])}, "filters[0].op", "Unknown operator"),
    ({"sort": "1; drop table orders"}, "sort", "has no column"),
    ({"limit": "0"}, "limit", "between 1 and 500"),
])
def test_bad_input_is_a_400_that_says_why(orders_duck, viewer, api_for, params, field, words):
    answer = api_for(viewer).get(f"{BASE}/rows", params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == field and words in error["message"]


def test_a_model_never_built_is_a_409_and_an_unknown_one_a_404(orders_duck, viewer, api_for):
    api = api_for(viewer)
    answer = api.get("/api/v1/models/ghost/rows")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_built"
    assert api.get("/api/v1/models/nope/profile", {"column": "x"}).status_code == 404
    assert api.get(f"{BASE}/profile").json()["error"]["field"] == "column"


def test_profile_and_chart_data_over_http(orders_duck, viewer, api_for):
    api = api_for(viewer)
    profile = api.get(f"{BASE}/profile", {"column": "status"}).json()
    assert profile["top"][0] in ({"value": "placed", "count": 2}, {"value": "shipped", "count": 2})
    data = api.post(f"{BASE}/chart-data", {"x": "status", "y": "amount", "aggregate": "sum"}, format="json").json()
    assert dict(zip(data["labels"], data["series"][0]["values"], strict=True))["shipped"] == 52.5


def test_posts_need_the_csrf_token_in_a_session(orders_duck, viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    answer = client.post(f"{BASE}/chart-data", json.dumps({"x": "status"}), content_type="application/json")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "csrf_failed"


# --------------------------------------------------------------------------- saved charts


def test_a_saved_chart_is_listed_shared_and_drawn_again(orders_duck, analyst, viewer, api_for):
    made = api_for(analyst).post("/api/v1/charts", CHART, format="json")
    assert made.status_code == 201, made.json()
    chart = made.json()
    assert chart["owner"] == "analyst" and chart["url"] == f"/charts/{chart['id']}/" and chart["may_change"]
    listed = api_for(viewer).get("/api/v1/charts", {"model": "orders"}).json()
    assert [c["id"] for c in listed["results"]] == [chart["id"]] and not listed["results"][0]["may_change"]
    assert api_for(viewer).get("/api/v1/charts", {"model": "other"}).json()["count"] == 0
    page = Client()
    page.force_login(viewer)
    shared = page.get(chart["url"])
    assert shared.status_code == 200
    assert b"Orders per status" in shared.content and b'id="explore-chart-definition"' in shared.content
    assert b"Delete this chart" not in shared.content
    assert page.get("/explore/orders/charts/").content.count(b"Orders per status") == 1
    assert entries(action="chart.create").count() == 1


def test_a_chart_over_columns_the_model_lacks_is_not_saved(orders_duck, analyst, api_for):
    answer = api_for(analyst).post("/api/v1/charts", {**CHART, "x": "nope"}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "x"
    answer = api_for(analyst).post("/api/v1/charts", {**CHART, "title": ""}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "title"
    answer = api_for(analyst).post("/api/v1/charts", {**CHART, "model": "nope"}, format="json")
    assert answer.status_code == 404
    assert not Chart.objects.exists()


def test_only_the_owner_or_an_admin_changes_or_deletes_a_chart(orders_duck, analyst, reviewer, admin, api_for):
    chart = api_for(analyst).post("/api/v1/charts", CHART, format="json").json()
    url = f"/api/v1/charts/{chart['id']}"
    assert api_for(reviewer).get(url).status_code == 200
    assert api_for(reviewer).patch(url, {"title": "Mine now"}, format="json").status_code == 403
    assert api_for(reviewer).delete(url).status_code == 403
    changed = api_for(analyst).patch(url, {"kind": "line", "y": "amount", "aggregate": "avg"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["kind"], changed.json()["aggregate"], changed.json()["title"]) == \
        ("line", "avg", "Orders per status")
    refused = api_for(analyst).patch(url, {"y": "email"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "y"
    assert api_for(admin).patch(url, {"title": "Tidied"}, format="json").json()["title"] == "Tidied"
    assert api_for(admin).delete(url).status_code == 204
    assert api_for(analyst).get(url).status_code == 404
    assert [e.action for e in entries(action="chart.")] == ["chart.delete", "chart.change", "chart.change",
                                                             "chart.create"]


def test_a_chart_per_month_is_drawn_saved_changed_and_shared_with_its_bucket(orders_duck, analyst, api_for):
    api = api_for(analyst)
    data = api.post(f"{BASE}/chart-data", {"x": "ordered_on", "aggregate": "count", "bucket": "month"}, format="json")
    assert data.status_code == 200, data.json()
    assert (data.json()["labels"], data.json()["series"][0]["values"], data.json()["bucket"]) == \
        (["2024-01-01", "2024-02-01", "2024-03-01"], [4, 1, 1], "month")
    refused = api.post(f"{BASE}/chart-data", {"x": "status", "aggregate": "count", "bucket": "month"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "bucket"
    assert "status holds text values" in refused.json()["error"]["message"]

    made = api.post("/api/v1/charts", {**CHART, "x": "ordered_on", "bucket": "week"}, format="json")
    assert made.status_code == 201, made.json()
    url = f"/api/v1/charts/{made.json()['id']}"
    assert api.get(url).json()["bucket"] == "week" and Chart.objects.get().bucket == "week"
    assert api.patch(url, {"bucket": "month"}, format="json").json()["bucket"] == "month"
    for change in ({"bucket": "fortnight"}, {"x": "status"}, {"kind": "scatter", "x": "amount", "y": "amount"}):
        answer = api.patch(url, change, format="json")
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "bucket", change
    page = Client()
    page.force_login(analyst)
    shared = page.get(made.json()["url"])
    assert shared.context["definition"]["bucket"] == "month" and b"by month of ordered_on" in shared.content
    assert api.patch(url, {"bucket": "", "x": "status"}, format="json").json()["bucket"] == ""
    assert api.post("/api/v1/charts", CHART, format="json").json()["bucket"] == ""  # none unless asked


def test_the_explore_page_shows_the_panel(orders_duck, viewer, outsider):
    page = Client()
    page.force_login(viewer)
    answer = page.get("/explore/orders/")
    assert answer.status_code == 200
    assert b'id="explore"' in answer.content and b'data-model="orders"' in answer.content
    assert b"explore/explore.js" in answer.content
    assert page.get("/explore/nope/").status_code == 404
    page.force_login(outsider)
    assert page.get("/explore/orders/").status_code == 403


# --------------------------------------------------------------------------- build history


def test_build_history_prefers_measurements_and_falls_back_to_runs(project, viewer, api_for):
    api = api_for(viewer)
    assert api.get(f"{BASE}/build-history").json() == {"model": "orders", "source": "runs", "points": []}
    start = timezone.now() - dt.timedelta(hours=3)
    for i in range(3):
        run = Run.objects.create(target="analytics", status="success")
        NodeRun.objects.create(run=run, unique_id="model.dmaas.orders", name="orders", resource_type="model",
                               status="success", rows=100 + i, seconds=1.5 + i,
                               finished_at=start + dt.timedelta(hours=i))
    NodeRun.objects.create(run=Run.objects.create(target="analytics", status="failed"), unique_id="model.dmaas.orders",
                           name="orders", resource_type="model", status="error", finished_at=timezone.now())
    history = api.get(f"{BASE}/build-history").json()
    assert history["source"] == "runs" and [p["rows"] for p in history["points"]] == [100, 101, 102]
    assert [p["seconds"] for p in history["points"]] == [1.5, 2.5, 3.5]
    Measurement.objects.create(model="orders", schema="analytics", measured_at=start, rows=7, seconds=0.5)
    history = api.get(f"{BASE}/build-history").json()
    assert history["source"] == "measurements" and history["points"][0]["rows"] == 7
    assert api.get("/api/v1/models/nope/build-history").status_code == 404


# --------------------------------------------------------------------------- personal data


@pytest.fixture
def email_is_pii(project):
    PiiTag.objects.create(model="orders", column="email", category="email", confidence=1.0,
                          status=PiiStatus.CONFIRMED, detected_at=timezone.now())


def test_rows_and_profiles_mask_personal_data_for_people_without_pii_view(orders_duck, email_is_pii, viewer,
                                                                          api_for):
    api = api_for(viewer)
    rows = api.get(f"{BASE}/rows", {"sort": "order_id"}).json()
    email = [c["name"] for c in rows["columns"]].index("email")
    assert rows["columns"][email]["masked"]
    assert [r[email] for r in rows["rows"]] == [MASK, MASK, None, MASK, MASK, MASK]
    profile = api.get(f"{BASE}/profile", {"column": "email"}).json()
    assert profile["masked"] and {t["value"] for t in profile["top"]} == {MASK}
    assert [t["count"] for t in profile["top"]] == [2, 2, 1]
    for params in ({"sort": "email"}, {"filters": json.dumps([{"column": "email", "op": "=", "value": "a"}])}):
        refused = api.get(f"{BASE}/rows", params)
        assert refused.status_code == 403 and "pii.view" in refused.json()["error"]["message"]
    empty = api.get(f"{BASE}/rows", {"filters": json.dumps([{"column": "email", "op": "is_null"}])}).json()
    assert [r[0] for r in empty["rows"]] == [3]


def test_charts_over_personal_data_need_pii_view(orders_duck, email_is_pii, viewer, api_for):
    api = api_for(viewer)
    for spec in ({"x": "email", "aggregate": "count"}, {"x": "status", "aggregate": "count", "group_by": "email"}):
        refused = api.post(f"{BASE}/chart-data", spec, format="json")
        assert refused.status_code == 403 and "email holds personal data" in refused.json()["error"]["message"]
    assert api.post("/api/v1/charts", {**CHART, "x": "email"}, format="json").status_code == 403
    fine = api.post(f"{BASE}/chart-data", {"x": "status", "aggregate": "count"}, format="json")
    assert fine.status_code == 200 and not fine.json()["masked"]


def test_people_with_pii_view_see_it_and_the_read_is_audited(orders_duck, email_is_pii, api_for):
    legal = make_user("lawyer", "legal")
    api = api_for(legal)
    rows = api.get(f"{BASE}/rows", {"sort": "order_id"}).json()
    assert rows["rows"][0][5] == "ada@example.com" and not rows["columns"][5].get("masked")
    data = api.post(f"{BASE}/chart-data", {"x": "email", "aggregate": "count"}, format="json").json()
    assert dict(zip(data["labels"], data["series"][0]["values"], strict=True))["ada@example.com"] == 2
    assert entries(action="pii.view").filter(actor_name="lawyer").count() == 2
