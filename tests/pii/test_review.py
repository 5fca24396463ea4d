"""Legal's review of PII tags: the page (confirm and reject with a note, CSRF, read-only for admins)
and the API (list with filters, confirm, reject, scan), with 403 for people who are not legal."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from models_service.audit import entries
from runner.models import PiiStatus, PiiTag
from runner.observe import tasks
from tests.runner.conftest import commit_to_main

pytestmark = pytest.mark.django_db


@pytest.fixture
def tag(db) -> PiiTag:
    return PiiTag.objects.create(
        model="customers", column="email", category="email", confidence=0.97, detected_at=timezone.now(),
        evidence={"name": {"category": "email", "rule": "email", "confidence": 0.9},
                  "values": {"sampled": 30, "matched": {"email": 29}}})


def client_for(user, **kw) -> Client:
    client = Client(**kw)
    client.force_login(user)
    return client


# --------------------------------------------------------------------------- the page


def test_legal_sees_the_suggestions_with_their_evidence_in_words(legal, tag):
    page = client_for(legal).get("/pii/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "customers" in text and "<code>email</code>" in text and "97%" in text
    assert "29 of 30 sampled values look like email" in text and "name matches “email”" in text
    assert f"/pii/{tag.pk}/confirm/" in text


def test_legal_confirms_with_a_note_through_a_form_with_its_csrf_token(legal, tag):
    client = client_for(legal, enforce_csrf_checks=True)
    assert client.post(f"/pii/{tag.pk}/confirm/", {"note": "Customers' addresses."}).status_code == 403
    client.get("/pii/")
    token = client.cookies["csrftoken"].value
    answer = client.post(f"/pii/{tag.pk}/confirm/", {"note": "Customers' addresses.", "next": "/pii/?status=all",
                                                     "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and answer["Location"] == "/pii/?status=all"
    tag.refresh_from_db()
    assert (tag.status, tag.decided_by, tag.note) == (PiiStatus.CONFIRMED, legal, "Customers' addresses.")
    entry = entries(action="pii.confirm").get()
    assert entry.actor == legal and entry.source == "page" and entry.details["column"] == "email"
    assert "masked for people without" in client.get("/pii/?status=confirmed").content.decode()


def test_a_rejection_needs_a_note_and_says_so(legal, tag):
    client = client_for(legal)
    answer = client.post(f"/pii/{tag.pk}/reject/", {"note": " "}, follow=True)
    assert "Say why this column holds no personal data." in answer.content.decode()
    tag.refresh_from_db()
    assert tag.status == PiiStatus.SUGGESTED
    client.post(f"/pii/{tag.pk}/reject/", {"note": "Shared team inboxes only."})
    tag.refresh_from_db()
    assert tag.status == PiiStatus.REJECTED and tag.note == "Shared team inboxes only."


def test_the_next_address_never_leaves_the_pii_page(legal, tag):
    answer = client_for(legal).post(f"/pii/{tag.pk}/confirm/", {"next": "https://evil.example/"})
    assert answer["Location"] == "/pii/"


def test_admins_see_the_list_read_only_and_analysts_not_at_all(admin, analyst, tag):
    page = client_for(admin).get("/pii/?status=all").content.decode()
    assert "<code>email</code>" in page and "Confirm PII" not in page
    assert client_for(admin).post(f"/pii/{tag.pk}/confirm/").status_code == 403
    assert client_for(analyst).get("/pii/").status_code == 403


def test_the_filters_narrow_the_list(legal, tag):
    PiiTag.objects.create(model="orders", column="ship_to", category="address", confidence=0.8,
                          detected_at=timezone.now())
    client = client_for(legal)
    assert "ship_to" not in client.get("/pii/?model=customers").content.decode()
    assert "ship_to" in client.get("/pii/?category=address").content.decode()
    assert "ship_to" not in client.get("/pii/?category=email").content.decode()
    assert "Scan customers again" in client.get("/pii/?model=customers").content.decode()


def test_scan_again_queues_a_scan_of_a_model_on_main(admin, monkeypatch, django_capture_on_commit_callbacks):
    commit_to_main({"models/customers.sql": "select 1 as id\n"})
    queued = []
    monkeypatch.setattr(tasks.scan_pii, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(admin).post("/pii/models/customers/scan/", follow=True)
    assert "A scan of customers is queued" in answer.content.decode()
    assert queued == [("customers", admin.pk)]
    assert client_for(admin).post("/pii/models/nope/scan/").status_code == 404


# --------------------------------------------------------------------------- the API


def test_the_api_lists_tags_with_filters_and_refuses_unknown_ones(legal, api_for, tag):
    api = api_for(legal)
    body = api.get("/api/v1/pii-tags?status=suggested&model=customers").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["id"], row["column"], row["category"], row["status"], row["decided_by"]) == (
        tag.pk, "email", "email", "suggested", None)
    assert api.get("/api/v1/pii-tags?status=confirmed").json()["count"] == 0
    bad = api.get("/api/v1/pii-tags?status=maybe")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    bad = api.get("/api/v1/pii-tags?model=a;b")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "model"


def test_the_api_confirms_and_rejects_for_legal(legal, api_for, tag):
    api = api_for(legal)
    answer = api.post(f"/api/v1/pii-tags/{tag.pk}/confirm", {"note": "Yes."}, format="json")
    assert answer.status_code == 200
    assert answer.json()["status"] == "confirmed" and answer.json()["decided_by"] == "lena"
    again = api.post(f"/api/v1/pii-tags/{tag.pk}/confirm", {}, format="json")
    assert again.status_code == 409 and "confirmed already" in again.json()["error"]["message"]
    no_note = api.post(f"/api/v1/pii-tags/{tag.pk}/reject", {}, format="json")
    assert no_note.status_code == 400 and no_note.json()["error"]["field"] == "note"
    rejected = api.post(f"/api/v1/pii-tags/{tag.pk}/reject", {"note": "Test accounts."}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert [e.action for e in entries(action="pii.")] == ["pii.reject", "pii.confirm"]
    assert all(e.source == "api" for e in entries(action="pii."))
    assert api.post("/api/v1/pii-tags/99999/confirm", {}, format="json").status_code == 404


def test_only_legal_decides_through_the_api(analyst, admin, viewer, api_for, tag):
    for user in (analyst, admin, viewer):
        for verb in ("confirm", "reject"):
            answer = api_for(user).post(f"/api/v1/pii-tags/{tag.pk}/{verb}", {"note": "x"}, format="json")
            assert answer.status_code == 403, (user, verb)
    assert api_for(analyst).get("/api/v1/pii-tags").status_code == 403
    tag.refresh_from_db()
    assert tag.status == PiiStatus.SUGGESTED


def test_the_api_queues_a_scan(legal, analyst, api_for, monkeypatch, django_capture_on_commit_callbacks):
    commit_to_main({"models/customers.sql": "select 1 as id\n"})
    queued = []
    monkeypatch.setattr(tasks.scan_pii, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_for(legal).post("/api/v1/models/customers/pii-scan")
    assert answer.status_code == 202 and answer.json() == {"model": "customers", "queued": True}
    assert queued == [("customers", legal.pk)]
    assert api_for(legal).post("/api/v1/models/nope/pii-scan").status_code == 404
    bad = api_for(legal).post("/api/v1/models/no-such!/pii-scan")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "model"
    assert api_for(analyst).post("/api/v1/models/customers/pii-scan").status_code == 403
