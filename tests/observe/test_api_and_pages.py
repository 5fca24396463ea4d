"""The data watch's API and pages: anomalies with filters, a model's measurements (personal data
masked), its sensitivity read by reviewers and tuned by platform admins, bad input answered with a
400 that says why."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from runner.models import Anomaly, AnomalySettings, Measurement, PiiTag, SchemaChange
from tests.personas import make_user
from tests.runner.test_runs import commit_to_main


@pytest.fixture
def people(db):
    return {name: make_user(name, name) for name in ("analyst", "reviewer", "admin", "viewer")}


@pytest.fixture
def orders(db):
    commit_to_main({"models/orders.sql": "select 1 as id, 'x@example.com' as email\n"})
    at = timezone.now() - dt.timedelta(hours=1)
    m = Measurement.objects.create(model="orders", schema="analytics", measured_at=at, rows=100, seconds=1.5,
                                   columns=[{"name": "id", "type": "INTEGER", "nulls": 0, "min": 1, "max": 100},
                                            {"name": "email", "type": "VARCHAR", "nulls": 0, "distinct": 3,
                                             "top": [["x@example.com", 50]]}])
    Anomaly.objects.create(model="orders", metric="row_count", value=10, expected=100, low=90, high=110, score=-20,
                           severity="incident", measurement=m, detected_at=at)
    Anomaly.objects.create(model="orders", metric="null_fraction", column="id", value=0.3, expected=0, low=0,
                           high=0.02, score=9, severity="warning", measurement=m, detected_at=at)
    SchemaChange.objects.create(model="orders", column="email", kind="added", new_type="VARCHAR", measurement=m,
                                detected_at=at)
    return m


def test_anomalies_are_listed_and_filtered(api_for, people, orders):
    api = api_for(people["reviewer"])
    body = api.get("/api/v1/anomalies").json()
    assert body["count"] == 2
    got = api.get("/api/v1/anomalies?severity=warning").json()["results"]
    assert [(a["metric"], a["column"]) for a in got] == [("null_fraction", "id")]
    assert api.get("/api/v1/anomalies?model=other").json()["count"] == 0
    bad = api.get("/api/v1/anomalies?severity=loud")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "severity"
    assert "warning, incident" in bad.json()["error"]["message"]
    assert api.get("/api/v1/anomalies?run=abc").status_code == 400
    assert api.get("/api/v1/schema-changes?model=orders").json()["results"][0]["kind"] == "added"
    assert api_for(people["viewer"]).get("/api/v1/anomalies").status_code == 403


def test_measurements_mask_confirmed_personal_data(api_for, people, orders):
    PiiTag.objects.create(model="orders", column="email", category="email", confidence=1, status="confirmed",
                          detected_at=timezone.now())
    rows = api_for(people["viewer"]).get("/api/v1/models/orders/measurements").json()
    assert rows[0]["rows"] == 100 and rows[0]["columns"][1]["top"] == "•••"
    assert rows[0]["columns"][0]["max"] == 100  # not personal data
    assert api_for(people["admin"]).get("/api/v1/models/orders/measurements").json()[0]["columns"][1]["top"] == [
        ["x@example.com", 50]]  # admins may see personal data
    assert api_for(people["viewer"]).get("/api/v1/models/nope/measurements").status_code == 404
    bad = api_for(people["viewer"]).get("/api/v1/models/orders/measurements?limit=0")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "limit"


def test_admins_tune_a_models_sensitivity_and_others_only_read_it(api_for, people, orders):
    url = "/api/v1/models/orders/anomaly-settings"
    before = api_for(people["reviewer"]).get(url).json()
    assert (before["own"], before["warn_score"], before["incident_score"], before["min_history"]) == (False, 4, 8, 8)
    assert api_for(people["reviewer"]).put(url, {"warn_score": 5}, format="json").status_code == 403
    admin = api_for(people["admin"])
    saved = admin.put(url, {"warn_score": 5, "incident_score": 12}, format="json").json()
    assert (saved["own"], saved["warn_score"], saved["incident_score"], saved["enabled"]) == (True, 5, 12, True)
    assert AnomalySettings.objects.get(model="orders").min_history == 8
    for body, field in (({"incident_score": 2}, "incident_score"), ({"warn_score": "loud"}, "warn_score"),
                        ({"min_history": 2.5}, "min_history"), ({"enabled": "yes"}, "enabled"),
                        ({"colour": "red"}, "colour")):
        answer = admin.put(url, body, format="json")
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, body
    assert admin.put("/api/v1/models/nope/anomaly-settings", {"warn_score": 5}, format="json").status_code == 404
    defaults = admin.put("/api/v1/models/-/anomaly-settings", {"enabled": False}, format="json").json()
    assert defaults["model"] == "" and defaults["enabled"] is False


def test_the_pages_show_anomalies_and_save_settings(client, people, orders):
    client.force_login(people["admin"])
    page = client.get("/anomalies/")
    assert page.status_code == 200 and b"row_count" in page.content and b"Column added" in page.content
    assert client.get("/anomalies/?severity=loud").status_code == 400
    form = {"model": "orders", "enabled": "on", "warn_score": "6", "incident_score": "3", "min_history": "8"}
    refused = client.post("/anomalies/settings/", form)
    assert refused.status_code == 400 and b"must not be below" in refused.content and b'value="3"' in refused.content
    saved = client.post("/anomalies/settings/", {**form, "incident_score": "10"})
    assert saved.status_code == 302 and AnomalySettings.objects.get(model="orders").incident_score == 10
    assert b"orders" in client.get("/anomalies/settings/").content
    client.force_login(people["reviewer"])
    assert client.get("/anomalies/settings/").status_code == 403
