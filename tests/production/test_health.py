"""/healthz?full=1: each component's state and latency, 200 only when all are ok, and no secrets."""

from __future__ import annotations

import json

import pytest

from portal.views import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_report(settings, tmp_path):
    settings.DMAAS_REPO = str(tmp_path / "repo.git")
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    health.forget_report()
    yield
    health.forget_report()


def test_full_report_lists_every_component_with_its_latency(client):
    response = client.get("/healthz?full=1")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert set(body["components"]) == {"database", "broker", "warehouse", "git_store"}
    for component in body["components"].values():
        assert component["status"] == "ok"
        assert component["latency_ms"] >= 0
    assert "no-cache" in response["Cache-Control"]


def test_plain_healthz_stays_the_liveness_answer(client):
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_a_failing_component_makes_it_503_without_revealing_the_error(client, settings, monkeypatch):
    settings.DMAAS_WAREHOUSE = "postgresql://admin:hunter2@127.0.0.1:1/warehouse"
    response = client.get("/healthz?full=1")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"  # saves and reviews still work without the warehouse
    assert body["components"]["warehouse"] == {"status": "error", "error": "OperationalError",
                                               "latency_ms": body["components"]["warehouse"]["latency_ms"]}
    assert body["components"]["database"]["status"] == "ok"
    text = json.dumps(body)
    assert "hunter2" not in text and "admin" not in text and "127.0.0.1" not in text


def test_a_broken_repository_is_reported(client, settings, tmp_path):
    (tmp_path / "repo.git").mkdir()
    response = client.get("/healthz?full=1")
    assert response.status_code == 503
    assert response.json()["components"]["git_store"]["error"] == "not_a_repository"
    assert response.json()["status"] == "error"  # nothing can be saved: not merely degraded


def test_the_report_is_cached_briefly(settings, monkeypatch):
    settings.DMAAS_HEALTH_CACHE_SECONDS = 60
    calls = []
    monkeypatch.setitem(health.CHECKS, "broker", lambda: calls.append(1) or "counted")
    health.cached_report()
    health.cached_report()
    assert calls == [1]


def test_redis_broker_is_pinged(settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    assert health.check_broker() == "redis"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(Exception):  # noqa: B017 - redis' ConnectionError, whichever class
        health.check_broker()
