"""The catalog API: search with reasons, a node's detail, lineage of models and of a column."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from runner.models import Measurement, PiiTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(analyst):
    client = APIClient()
    client.force_authenticate(analyst)
    return client


def test_search_answers_ranked_results_with_their_reason(project, api):
    body = api.get("/api/v1/search", {"q": "orders"}).json()
    assert body["query"] == "orders" and body["count"] == 3
    first = body["results"][0]
    assert first == {"kind": "model", "name": "orders", "description": "Every order with its customer's e-mail address",
                     "owner": "finance-team", "materialized": "table", "tags": ["finance"], "score": 100,
                     "reason": "name", "column": "", "matched": "", "url": "/catalog/orders/"}
    assert [r["name"] for r in body["results"]] == ["orders", "shop.orders", "stg_orders"]
    column = api.get("/api/v1/search", {"q": "amount_cents"}).json()["results"]
    assert [(r["name"], r["reason"], r["column"]) for r in column] == [("stg_orders", "column", "amount_cents")]


def test_search_refuses_bad_parameters_with_a_message(project, api):
    for params, field in (({"q": "x", "kind": "table"}, "kind"), ({"q": "x", "limit": "0"}, "limit"),
                          ({"q": "x" * 201}, "q")):
        response = api.get("/api/v1/search", params)
        assert response.status_code == 400, params
        assert response.json()["error"]["field"] == field and response.json()["error"]["message"]


def test_the_detail_has_columns_stats_pii_tests_and_freshness(project, api):
    Measurement.objects.create(model="orders", kind="production", schema="analytics",
                               measured_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), rows=3,
                               columns=[{"name": "customer_email", "type": "VARCHAR", "nulls": 0, "distinct": 3,
                                         "min": "a@x.io", "max": "c@x.io", "top": [["a@x.io", 1]]}])
    PiiTag.objects.create(model="orders", column="customer_email", category="email", confidence=0.97,
                          status="confirmed", detected_at=timezone.now())
    body = api.get("/api/v1/catalog/orders").json()
    assert {k: body[k] for k in ("kind", "name", "owner", "tags", "materialized", "url", "lineage_url")} == {
        "kind": "model", "name": "orders", "owner": "finance-team", "tags": ["finance"], "materialized": "table",
        "url": "/catalog/orders/", "lineage_url": "/catalog/orders/lineage/"}
    email = next(c for c in body["columns"] if c["name"] == "customer_email")
    assert email["pii"] == {"category": "email", "status": "confirmed", "confidence": 0.97}
    assert email["masked"] is True and email["stats"] == {"nulls": 0, "distinct": 3, "min": "•••", "max": "•••",
                                                          "top": "•••"}
    assert email["type"] == "VARCHAR" and email["in_warehouse"] is True
    assert [t["kind"] for t in body["tests"]] == ["not_null", "unique"]
    assert body["tests"][0]["status"] is None
    assert body["freshness"]["built_at"] is None
    assert [p["name"] for p in body["parents"]] == ["stg_customers", "stg_orders"]
    assert body["parents"][0]["url"] == "/catalog/stg_customers/"
    assert [c["name"] for c in body["children"]] == ["revenue"]


def test_the_detail_of_a_missing_node_is_a_404(project, api):
    response = api.get("/api/v1/catalog/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_model_lineage_and_column_lineage(project, api):
    graph = api.get("/api/v1/catalog/orders/lineage", {"up": 1, "down": 1}).json()
    assert graph["focus"] == "orders" and (graph["up"], graph["down"]) == (1, 1)
    assert {n["name"]: n["layer"] for n in graph["nodes"]} == {"stg_customers": -1, "stg_orders": -1, "orders": 0,
                                                               "revenue": 1}
    assert {"from": "orders", "to": "revenue"} in graph["edges"]
    assert next(n for n in graph["nodes"] if n["name"] == "revenue")["lineage_url"] == "/catalog/revenue/lineage/"
    traced = api.get("/api/v1/catalog/orders/lineage", {"column": "customer_email"}).json()
    assert traced["focus"] == "orders.customer_email"
    assert [n["id"] for n in traced["upstream"]] == ["shop.customers.email", "stg_customers.email"]
    assert next(n for n in traced["nodes"] if n["id"] == "stg_customers.email")["lineage_url"] == (
        "/catalog/stg_customers/lineage/?column=email")
    bad = api.get("/api/v1/catalog/orders/lineage", {"down": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "down"
    assert api.get("/api/v1/catalog/orders/lineage", {"column": "nope"}).status_code == 400


def test_the_schema_documents_the_catalog(project, api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/search" in schema and "/api/v1/catalog/{name}/lineage" in schema
