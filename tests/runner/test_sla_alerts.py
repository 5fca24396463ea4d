"""SLA alerts (issue 8, item 4): each transition to at risk or breached is told once, however many
sweeps run, one after another or at the same moment; the webhook gets the item as JSON; the digest
goes out once a day.

The week as in test_sla_states.py: Monday to Friday 09:00-17:00 Europe/Berlin, February 2027. The
hourly schedule is switched off here unless a test is about runs, so its slots raise no alerts.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery.schedules import crontab
from django.db import connection

from models_service import changes
from models_service.project_files import ModelSpec
from runner import incidents, tasks
from runner.models import Schedule, SlaAlert
from runner.sla import alerts
from tests.personas import make_user

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def company_week(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.DMAAS_WORKING_DAYS = "mon-fri"
    settings.DMAAS_WORKING_HOURS = "09:00-17:00"
    settings.DMAAS_HOLIDAYS = "DE"
    settings.DMAAS_SLA_WEBHOOK = ""
    settings.DMAAS_INCIDENT_WEBHOOK = ""


@pytest.fixture
def people(db):
    Schedule.objects.update(enabled=False)
    return (make_user("ana", "analyst"), make_user("rita", "reviewer"), make_user("rob", "reviewer"),
            make_user("adam", "admin"))


def sla_mails(outbox) -> list:
    return [m for m in outbox if m.subject.startswith("[dmaas] SLA")]


def submitted(analyst, when: dt.datetime, title: str = "Orders by day"):
    with time_machine.travel(when, tick=False):
        change = changes.open_change(analyst, title)
        changes.save_model(analyst, change, "orders", "select 1 as id\n", ModelSpec("orders"))
        return changes.submit_change(analyst, change)


def opened(subject: str, when: dt.datetime):
    with time_machine.travel(when, tick=False):
        return incidents.report(subject, "model_failed", "boom")


@pytest.mark.django_db
def test_a_review_going_at_risk_then_breached_sends_two_mails_over_many_sweeps(
        people, mailoutbox, django_capture_on_commit_callbacks):
    analyst, *_ = people
    change = submitted(analyst, at(2027, 2, 1, 9, 0))
    moments = [at(2027, 2, 2, 10, 0)] * 3 + [at(2027, 2, 3, 11, 0)] * 3 + [at(2027, 2, 3, 16, 0)] * 2 + [
        at(2027, 2, 4, 10, 0)] * 3 + [at(2027, 2, 5, 10, 0)]
    answers = []
    for now in moments:
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(alerts.sweep(now))
    assert [a["sent"] for a in answers] == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    assert answers[4]["already_sent"] == 1
    at_risk, breached = sla_mails(mailoutbox)
    assert set(at_risk.to) == {"rita@example.com", "rob@example.com"}  # every reviewer
    assert "at risk" in at_risk.subject and "Orders by day" in at_risk.subject
    assert f"/review/{change.pk}/" in at_risk.body and "18.0 h of 24.0 h" in at_risk.body
    assert set(breached.to) == {"rita@example.com", "rob@example.com", "adam@example.com"}  # and the admins
    assert "breached" in breached.subject
    assert set(SlaAlert.objects.values_list("kind", "item", "state")) == {
        ("review", f"change:{change.pk}", "at_risk"), ("review", f"change:{change.pk}", "breached")}


@pytest.mark.django_db
def test_a_decided_review_or_an_acknowledged_incident_is_not_told(people, mailoutbox,
                                                                  django_capture_on_commit_callbacks):
    from models_service import review

    analyst, reviewer, _, admin = people
    change = submitted(analyst, at(2027, 2, 1, 9, 0))
    incident = opened("orders", at(2027, 2, 1, 9, 0))
    with time_machine.travel(at(2027, 2, 1, 10, 0), tick=False):
        review.request_changes(reviewer, change, "Rename it.")
        incidents.acknowledge(admin, incident.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.sweep(at(2027, 2, 10, 10, 0))["sent"] == 0
    assert not sla_mails(mailoutbox) and not SlaAlert.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_moment_tell_each_transition_once(people, mailoutbox):
    """Two threads, each with its own database connection, sweep at once: the SlaAlert row's unique
    (kind, item, state) lets one of them claim each transition; the other sends nothing."""
    incident = opened("orders", at(2027, 2, 1, 10, 0))
    incident_mails = len(mailoutbox)  # the incident's own "opened" mail
    for now, state in ((at(2027, 2, 1, 13, 30), "at_risk"), (at(2027, 2, 1, 14, 30), "breached")):
        for round_ in range(3):  # the same moment, again and again
            start = threading.Barrier(2)
            answers: list[dict] = []
            errors: list[BaseException] = []

            def sweep(now=now, start=start, answers=answers, errors=errors):
                try:
                    start.wait(timeout=10)
                    answers.append(alerts.sweep(now))
                except BaseException as err:  # noqa: BLE001 - reported below
                    errors.append(err)
                finally:
                    connection.close()

            threads = [threading.Thread(target=sweep) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not errors, errors
            assert len(answers) == 2
            assert all(a["sent"] + a["already_sent"] == 1 for a in answers)  # both saw the transition
            assert sum(a["sent"] for a in answers) == (1 if round_ == 0 else 0)
        assert SlaAlert.objects.filter(item=f"incident:{incident.pk}", state=state).count() == 1
    told = sla_mails(mailoutbox)
    assert len(told) == 2 and len(mailoutbox) == incident_mails + 2
    assert ["at risk" in told[0].subject, "breached" in told[1].subject] == [True, True]
    assert all(m.to == ["adam@example.com"] for m in told)  # nobody assigned: the admins


@pytest.mark.django_db
def test_the_webhook_gets_the_item_as_json_and_an_assignee_the_mail(people, settings, mailoutbox,
                                                                    django_capture_on_commit_callbacks):
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.DMAAS_SLA_WEBHOOK = f"http://127.0.0.1:{server.server_port}/sla"
    analyst, _, _, admin = people
    incident = opened("orders", at(2027, 2, 1, 10, 0))
    with time_machine.travel(at(2027, 2, 1, 10, 5), tick=False):
        incidents.assign(admin, incident.pk, "ana")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            alerts.sweep(at(2027, 2, 1, 15, 0))
            alerts.sweep(at(2027, 2, 1, 15, 5))
    finally:
        server.shutdown()
        server.server_close()
    [told] = sla_mails(mailoutbox)
    assert told.to == ["ana@example.com"] and "orders: a model failed to build" in told.subject
    [payload] = received
    assert payload["event"] == "sla.breached"
    item = payload["item"]
    assert (item["kind"], item["key"], item["state"], item["incident"]) == (
        "incident", f"incident:{incident.pk}", "breached", incident.pk)
    assert (item["owner"], item["allowance_hours"], item["used_hours"], item["left_hours"]) == ("ana", 4.0, 5.0, -1.0)
    assert item["due"] == "2027-02-01T13:00:00+00:00"


@pytest.mark.django_db
def test_a_late_run_slot_tells_the_admins(people, mailoutbox, django_capture_on_commit_callbacks):
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(enabled=True, created_at=at(2027, 2, 1, 9, 30))
    with django_capture_on_commit_callbacks(execute=True):
        first = alerts.sweep(at(2027, 2, 1, 10, 3))  # the 10:00 slot: within its 5 minutes
        second = alerts.sweep(at(2027, 2, 1, 10, 6))
        third = alerts.sweep(at(2027, 2, 1, 10, 30))
    assert (first["sent"], second["sent"], third["sent"]) == (0, 1, 0)
    [told] = sla_mails(mailoutbox)
    assert told.to == ["adam@example.com"] and "Hourly production run at 2027-02-01 10:00" in told.subject


@pytest.mark.django_db
def test_the_digest_goes_to_the_admins_once_a_day(people, mailoutbox, django_capture_on_commit_callbacks):
    analyst, *_ = people
    submitted(analyst, at(2027, 2, 4, 13, 0), "Revenue by month")  # Tuesday 08:00: 20 h of 24 used
    opened("customers", at(2027, 2, 5, 10, 0))  # breached on Friday: not yesterday's
    opened("orders", at(2027, 2, 8, 10, 0))  # breached on Monday 14:00, unanswered
    tuesday = at(2027, 2, 9, 8, 0)
    with django_capture_on_commit_callbacks(execute=True):
        first = alerts.digest(tuesday)
        again = [alerts.digest(tuesday), alerts.digest(at(2027, 2, 9, 12, 0))]
    assert first["sent"] and (first["breached"], first["at_risk"]) == (1, 1)
    assert [a["sent"] for a in again] == [False, False]
    [mail] = mailoutbox
    assert mail.to == ["adam@example.com"] and mail.subject.startswith("[dmaas] SLA digest 2027-02-09")
    yesterday, now = mail.body.split("At risk now")
    assert "Breached yesterday (1)" in yesterday and "orders: a model failed to build" in yesterday
    assert "customers" not in mail.body
    assert "Revenue by month" in now and "at risk, 20.0 h of 24.0 h" in now
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.digest(at(2027, 2, 10, 8, 0))["sent"]  # the next day's
    assert len(mailoutbox) == 2
    assert set(SlaAlert.objects.filter(kind="digest").values_list("item", flat=True)) == {"2027-02-09", "2027-02-10"}


@pytest.mark.django_db
def test_the_tasks_run_the_sweep_and_the_digest_and_beat_fires_them(people, settings):
    assert tasks.sla_sweep()["sent"] == 0
    assert tasks.sla_digest()["sent"] is True
    sweep, digest = settings.CELERY_BEAT_SCHEDULE["dmaas-sla-sweep"], settings.CELERY_BEAT_SCHEDULE["dmaas-sla-digest"]
    assert (sweep["task"], sweep["schedule"]) == ("runner.tasks.sla_sweep", 300.0)
    assert digest["task"] == "runner.tasks.sla_digest" and digest["schedule"] == crontab(hour=8, minute=0)
