"""The catalog's pages: search, a model's page (columns, statistics, PII, tests, freshness, runs) and
its lineage page, as people see them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.views import catalog as catalog_views
from runner.models import Measurement, NodeRun, PiiTag, Run

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def built(name="orders", *, status="success", at=AT, rows=42):
    run = Run.objects.create(target="analytics", status="success" if status == "success" else "failed",
                             started_at=at, finished_at=at)
    NodeRun.objects.create(run=run, unique_id=f"model.dmaas.{name}", name=name, resource_type="model",
                           status=status, finished_at=at, rows=rows, seconds=1.5)
    return run


def measured(name="orders", **columns):
    return Measurement.objects.create(model=name, kind="production", schema="analytics", measured_at=AT, rows=42,
                                      columns=[{"name": k, **v} for k, v in columns.items()])


def pii(column, status="confirmed", model="orders"):
    return PiiTag.objects.create(model=model, column=column, category="email", confidence=0.95, status=status,
                                 detected_at=timezone.now())


def test_statistics_measured_on_a_sample_say_so(project, client, analyst):
    built()
    measured(amount={"type": "DOUBLE", "nulls": 2000, "null_fraction": 0.02, "mean": 20.5, "sample": 10000},
             order_id={"type": "BIGINT", "nulls": 0, "null_fraction": 0.0, "distinct": 42})
    client.force_login(analyst)
    text = client.get("/catalog/orders/").content.decode()
    assert text.count('data-stat="sample"') == 1 and "10000 rows" in text


def test_the_search_page_ranks_and_says_why(project, client, analyst):
    client.force_login(analyst)
    page = client.get("/catalog/", {"q": "orders"})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index('data-name="orders"') < text.index('data-name="shop.orders"') < text.index(
        'data-name="stg_orders"')
    assert "Matched on name contains" in text and 'href="/catalog/orders/"' in text
    page = client.get("/catalog/", {"q": "receipt"})
    assert "Matched on column description <code>customer_email</code>" in page.content.decode()


def test_the_search_page_refuses_a_bad_kind_with_a_reason(project, client, analyst):
    client.force_login(analyst)
    page = client.get("/catalog/", {"q": "orders", "kind": "table"})
    assert page.status_code == 400 and "Unknown kind" in page.content.decode()


def test_the_model_page_shows_what_the_catalog_knows(project, client, analyst):
    run = built()
    measured(order_id={"type": "BIGINT", "nulls": 0, "null_fraction": 0.0, "distinct": 42, "min": 1, "max": 42},
             amount={"type": "DECIMAL(18,2)", "nulls": 2, "null_fraction": 0.05, "min": 1.5, "max": 99.0, "mean": 20.25},
             loaded_at={"type": "TIMESTAMP", "nulls": 0})
    NodeRun.objects.create(run=run, unique_id="test.dmaas.unique_orders_order_id", name="unique_orders_order_id",
                           resource_type="test", status="fail", failures=3, finished_at=AT)
    client.force_login(analyst)
    page = client.get("/catalog/orders/")
    assert page.status_code == 200
    text = page.content.decode()
    for expected in ("Every order with its customer", "finance-team", ">finance</a>", "table",
                     "Where the receipt goes", "BIGINT", "DECIMAL(18,2)", "not in the yml", "loaded_at",
                     "unique: fail", "3 failing rows", "not_null", "not run yet", "42 rows",
                     'href="/catalog/orders/lineage/"', 'href="/models/orders/history/"', "stg_customers",
                     "revenue", "In production", f'href="/runs/{run.pk}/"'):
        assert expected in text, expected
    assert "2026-03-02" in text  # fresh as of the last build
    assert page.context["model_name"] == "orders"
    assert page.context["columns"][0] == {"name": "order_id", "type": "BIGINT"}
    # The explore panel (another page family's) shows once its template exists.
    assert page.context["explore_enabled"] is catalog_views.explore_enabled()
    if page.context["explore_enabled"]:
        assert 'data-model="orders"' in text


def test_freshness_is_the_last_successful_build_and_says_when_a_later_one_failed(project, client, analyst):
    built(at=AT)
    built(status="error", at=AT + dt.timedelta(hours=1))
    client.force_login(analyst)
    detail = client.get("/catalog/orders/").context["freshness"]
    assert detail["built_at"] == AT and detail["failing"] and detail["last_status"] == "error"


def test_statistics_of_a_confirmed_pii_column_are_masked_for_those_who_may_not_see_pii(
        project, client, analyst, admin):
    measured(customer_email={"type": "VARCHAR", "nulls": 0, "distinct": 40, "min": "ann@example.com",
                             "max": "zed@example.com", "top": [["ann@example.com", 2]]},
             order_id={"type": "BIGINT", "min": 1, "max": 42})
    pii("customer_email")
    pii("customer_id", status="suggested")
    client.force_login(analyst)
    text = client.get("/catalog/orders/").content.decode()
    assert "ann@example.com" not in text and "zed@example.com" not in text
    assert "•••" in text and "are masked" in text
    assert ">email</span> <span class=\"hint\">confirmed" in text and "suggested" in text
    assert ">40<" in text  # counts stay
    client.force_login(admin)
    text = client.get("/catalog/orders/").content.decode()
    assert "ann@example.com" in text and "are masked" not in text


def test_a_source_and_a_seed_have_pages_too(project, client, viewer):
    client.force_login(viewer)
    source = client.get("/catalog/shop.orders/")
    assert source.status_code == 200 and "Orders as the shop writes them" in source.content.decode()
    assert "In production" not in source.content.decode()
    seed = client.get("/catalog/countries/")
    assert seed.status_code == 200 and "country_names" in seed.content.decode()


def test_an_unknown_or_malformed_name_is_a_404(project, client, analyst):
    client.force_login(analyst)
    assert client.get("/catalog/nothing_here/").status_code == 404
    assert client.get("/catalog/a.b.c/").status_code == 404
    assert client.get("/catalog/nothing_here/lineage/").status_code == 404


def test_the_lineage_page_lists_the_graph_without_js(project, client, analyst):
    client.force_login(analyst)
    page = client.get("/catalog/orders/lineage/", {"up": 1, "down": 1})
    assert page.status_code == 200
    text = page.content.decode()
    assert 'href="/catalog/stg_orders/lineage/?up=1&amp;down=1"' in text
    assert 'href="/catalog/revenue/lineage/?up=1&amp;down=1"' in text
    assert "shop.orders" not in text.split('id="graph-heading"')[1]  # two levels up: not shown at 1
    assert 'data-src="/api/v1/catalog/orders/lineage?up=1&amp;down=1"' in text


def test_the_lineage_page_traces_a_column(project, client, analyst):
    client.force_login(analyst)
    page = client.get("/catalog/orders/lineage/", {"column": "amount"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "stg_orders.amount_cents" in text and "shop.orders.amount" in text and "revenue.revenue" in text
    assert "o.amount_cents / 100.0" in text


def test_the_lineage_page_says_what_is_wrong_with_its_parameters(project, client, analyst):
    client.force_login(analyst)
    page = client.get("/catalog/orders/lineage/", {"up": "11"})
    assert page.status_code == 400 and "0 to 10" in page.content.decode()
    page = client.get("/catalog/orders/lineage/", {"column": "no_such"})
    assert page.status_code == 400 and "has no column no_such" in page.content.decode()


def test_the_review_page_links_each_model_to_its_lineage():
    from pathlib import Path

    template = Path(__file__).resolve().parents[2] / "templates" / "review" / "review.html"
    assert "{% url 'catalog-lineage' row.model %}" in template.read_text()  # the page's own tests render it
