"""The service agreement's pages (issue 8, item 3): the dashboard's figures against a fixture of known
changes, incidents and runs; the settings page with its validation, audit and closing days; the clocks
on the review queue and the incident list; who may open what; and query-count guards.

The fixture happens in November 2026 in Europe/Berlin (UTC+1), working time Monday to Friday 9-17,
no public holidays. "Now" is Wednesday 25 November, 12:00. Every fact is made through the services
(models_service.changes and .review, runner.incidents), each under time_machine at its moment, so the
audit trail the clock reads has those times:

- reviews (3 working days = 24 working hours each):
  A submitted Mon 2 Nov 9:00, approved 13:00: 4 h, met.
  B submitted Mon 9 Nov 9:00, changes requested Tue 10 Nov 11:00: 10 h, met (paused since).
  C submitted Mon 16 Nov 9:00, approved Fri 20 Nov 9:00: 32 h, met late.
  D submitted Mon 23 Nov 9:00, waiting: 19 h used, at risk, 5 h left, due Wed 25 Nov 17:00.
  E submitted Wed 18 Nov 9:00, waiting: 43 h used, breached, 19 h over.
  -> 2 met of 4 judged = 50 %; time to first review: median 10 h, p90 32 h.
- incidents (4 working hours each):
  I1 opened Tue 3 Nov 10:00, acknowledged 12:00: 2 h, met.
  I2 opened Thu 12 Nov 15:00, acknowledged Fri 13 Nov 12:00: 5 h, met late.
  I3 opened Wed 25 Nov 9:00, open: 3 h used, at risk, 1 h left.
  I4 opened Tue 24 Nov 9:00, open, assigned to adam: 11 h used, breached, 7 h over.
  -> 1 met of 3 judged = 33.3 %; time to acknowledge: median 3.5 h, p90 5 h.
- runs (5 minutes' tolerance): the hourly schedule from Wed 25 Nov 9:30; the 10:00 run started
  10:02 (met), the 11:00 run 11:09 (met late), 12:00 is now (on track). -> 50 %; 5.5 / 9 minutes late.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from models_service import changes, index, review
from models_service import repo as repo_module
from models_service.errors import InvalidInput
from models_service.models import AuditEntry, ChangeRequest
from models_service.project_files import ModelSpec
from models_service.repo import get_store
from portal.views.sla import amount_words
from runner import incidents
from runner.models import ClosingDay, Incident, NodeRun, Run, Schedule, SlaSettings
from runner.sla import settings_service
from tests.personas import make_user
from tests.runner.conftest import commit_to_main

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
MAIN = {
    "models/stg_orders.sql": "select 1 as order_id\n",
    "models/orders.sql": "select order_id from {{ ref('stg_orders') }}\n",
    "models/order_count.sql": "select count(*) as n from {{ ref('orders') }}\n",
    "models/customers.sql": "select 10 as customer_id\n",
}
PERIOD = "?from=2026-11-02&to=2026-11-25"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of November 2026 on the company's clock."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


NOW = at(25, 12)


@pytest.fixture(autouse=True)
def repo(tmp_path, settings):
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    settings.DMAAS_HOLIDAYS = ""
    settings.DMAAS_WORKING_DAYS = "mon-fri"
    settings.DMAAS_WORKING_HOURS = "09:00-17:00"
    repo_module.forget_stores()
    commit_to_main(MAIN)
    index.rebuild(get_store())
    yield
    repo_module.forget_stores()


@pytest.fixture
def people(db):
    return {"ana": make_user("ana", "analyst"), "rita": make_user("rita", "reviewer"),
            "adam": make_user("adam", "admin")}


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def submit(author, title: str, when: dt.datetime, model: str = "customers") -> ChangeRequest:
    with time_machine.travel(when, tick=False):
        change = changes.open_change(author, title)
        changes.save_model(author, change, model, f"select {len(title)} as id\n", ModelSpec(model))
        return changes.submit_change(author, change)


def approve(reviewer, change: ChangeRequest, when: dt.datetime) -> None:
    with time_machine.travel(when, tick=False):
        review.approve_change(reviewer, change.pk)


def send_back(reviewer, change: ChangeRequest, when: dt.datetime) -> None:
    with time_machine.travel(when, tick=False):
        review.request_changes(reviewer, change.pk, "Please name the column.")


def open_incident(subject: str, cause: str, when: dt.datetime) -> Incident:
    with time_machine.travel(when, tick=False):
        return incidents.report(subject, cause, "boom")


def acknowledge(admin, incident: Incident, when: dt.datetime) -> None:
    with time_machine.travel(when, tick=False):
        incidents.acknowledge(admin, incident.pk, "on it")


@pytest.fixture
def fixture(people):
    ana, rita, adam = people["ana"], people["rita"], people["adam"]
    a = submit(ana, "A: quick", at(2, 9))
    approve(rita, a, at(2, 13))
    b = submit(ana, "B: sent back", at(9, 9))
    send_back(rita, b, at(10, 11))
    c = submit(ana, "C: late", at(16, 9))
    approve(rita, c, at(20, 9))
    e = submit(ana, "E: breached", at(18, 9))
    d = submit(ana, "D: at risk", at(23, 9))
    i1 = open_incident("orders", "model_failed", at(3, 10))
    acknowledge(adam, i1, at(3, 12))
    i2 = open_incident("customers", "model_failed", at(12, 15))
    acknowledge(adam, i2, at(13, 12))
    i4 = open_incident("stg_orders", "model_failed", at(24, 9))
    with time_machine.travel(at(24, 9, 30), tick=False):
        incidents.assign(adam, i4.pk, "adam")
    i3 = open_incident("order_count", "test_failed", at(25, 9))
    # The hourly schedule exists from the first start; here it began on Wednesday at 9:30.
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(created_at=at(25, 9, 30))
    on_time = Run.objects.create(schedule=schedule, slot=at(25, 10), target="analytics", status="success",
                                 started_at=at(25, 10, 2), finished_at=at(25, 10, 5))
    Run.objects.create(schedule=schedule, slot=at(25, 11), target="analytics", status="success",
                       started_at=at(25, 11, 9), finished_at=at(25, 11, 12))
    NodeRun.objects.create(run=on_time, unique_id="model.dmaas.orders", name="orders", resource_type="model",
                           status="success", attempts=1, finished_at=at(25, 11, 30))
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "i1": i1, "i2": i2, "i3": i3, "i4": i4, **people}


def dashboard(user, query: str = PERIOD):
    with time_machine.travel(NOW, tick=False):
        return client_for(user).get(f"/sla/{query}")


def card(page: str, key: str) -> str:
    start = page.index(f'id="sla-{key}"')
    return page[start:page.index("</article>", start)]


def counts(card_html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', card_html)}


def timing(card_html: str) -> tuple[str, str]:
    return (re.search(r'data-timing="median">([^<]+)<', card_html).group(1),
            re.search(r'data-timing="p90">([^<]+)<', card_html).group(1))


def section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start:page.index("</section>", start)]


def row_of(html: str, needle: str) -> str:
    start = html.index(needle)
    return html[html.rindex("<tr", 0, start):html.index("</tr>", start)]


# --------------------------------------------------------------------------- the dashboard


def test_the_dashboard_measures_each_promise_over_the_period(fixture):
    response = dashboard(fixture["adam"])
    assert response.status_code == 200
    page = text(response)

    reviews = card(page, "review")
    assert 'data-sla="attainment">50 %' in reviews and "on time (2 of 4)" in reviews and "target 95 %" in reviews
    assert "misses target" in reviews
    assert counts(reviews) == {"met": 2, "met_late": 1, "breached": 1, "open": 1, "at_risk": 1}
    assert timing(reviews) == ("10", "32") and "working hours" in reviews

    incident_card = card(page, "incident")
    assert 'data-sla="attainment">33.3 %' in incident_card and "misses target" in incident_card
    assert counts(incident_card) == {"met": 1, "met_late": 1, "breached": 1, "open": 1, "at_risk": 1}
    assert timing(incident_card) == ("3.5", "5")

    runs = card(page, "run")
    assert 'data-sla="attainment">50 %' in runs
    assert counts(runs) == {"met": 1, "met_late": 1, "breached": 0, "open": 1, "at_risk": 0}
    assert timing(runs) == ("5.5", "9") and "minutes late" in runs
    assert "<span data-fresh>1 of 4</span>" in runs  # orders was built at 11:30; the other three never

    stale = section(page, "sla-stale-title")
    assert all(name in stale for name in ("stg_orders", "order_count", "customers")) and ">orders<" not in stale

    assert "Times are shown in Europe/Berlin" in page
    assert "Wed 2026-11-25 17:00" in section(page, "sla-attention-title")  # D's due time, on the company's clock


def test_the_at_risk_and_breached_items_are_listed_with_their_owner_and_time(fixture):
    attention = section(text(dashboard(fixture["adam"])), "sla-attention-title")
    keys = re.findall(r'data-key="([^"]+)"', attention)
    e, i4, i3, d = fixture["e"], fixture["i4"], fixture["i3"], fixture["d"]
    # breached first (most over first), then at risk (least left first)
    assert keys == [f"change:{e.pk}", f"incident:{i4.pk}", f"incident:{i3.pk}", f"change:{d.pk}"]
    row = row_of(attention, f'data-key="change:{e.pk}"')
    assert f'href="/review/{e.pk}/"' in row and ">ana<" in row and "breached" in row and "19 h over" in row
    row = row_of(attention, f'data-key="incident:{i4.pk}"')
    assert f'href="/incidents/{i4.pk}/"' in row and ">adam<" in row and "7 h over" in row
    row = row_of(attention, f'data-key="incident:{i3.pk}"')
    assert "at risk" in row and "1 h left" in row
    row = row_of(attention, f'data-key="change:{d.pk}"')
    assert f'href="/review/{d.pk}/"' in row and "at risk" in row and "5 h left" in row


def test_weekly_trends_are_charted_from_json_and_tabled(fixture):
    page = text(dashboard(fixture["adam"]))
    data = json.loads(re.search(r'<script id="sla-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["weeks"] == ["W45 · 2 Nov", "W46 · 9 Nov", "W47 · 16 Nov", "W48 · 23 Nov"]
    series = {s["key"]: s for s in data["series"]}
    assert series["review"]["attainment"] == [100.0, 100.0, 0.0, None]
    assert series["review"]["met"] == [1, 1, 0, 0] and series["review"]["met_late"] == [0, 0, 1, 0]
    assert series["review"]["breached"] == [0, 0, 1, 0]  # E was due on Friday 20 November
    assert series["incident"]["attainment"] == [100.0, 0.0, None, 0.0]
    assert series["run"]["met"][-1] == 1 and series["run"]["met_late"][-1] == 1 and series["run"]["target"] == 99.0
    # the same figures in the table under the charts, for readers without scripts
    weeks = section(page, "sla-weeks-title")
    assert '<div class="sla-charts" hidden>' in weeks and '<script src="/static/sla/sla.js" defer>' in page
    assert "<script>" not in page  # nothing inline: the charts read the json_script element
    row = row_of(weeks, 'data-week="2026-W47"')
    assert re.findall(r'<td class="num sla-week-attainment">([^<]*)<', row)[0] == "0 %"
    # per owner
    owners = section(page, "sla-owners-title")
    assert re.search(r"<th scope=\"row\">ana</th><td class=\"num\">4</td><td class=\"num\">2</td>"
                     r"<td class=\"num\">50 %</td>", owners)


def test_the_period_chooser_and_its_presets(fixture):
    page = text(dashboard(fixture["adam"], ""))  # default: the last 4 full weeks and this week so far
    assert 'value="2026-10-26"' in page and 'value="2026-11-25"' in page
    assert 'href="?from=2026-11-19&amp;to=2026-11-25">Last 7 days' in page
    assert 'href="?from=2026-10-26&amp;to=2026-11-25" aria-current="true">Last 4 weeks' in page
    assert 'href="?from=2026-10-01&amp;to=2026-11-25">This quarter' in page

    week = text(dashboard(fixture["adam"], "?from=2026-11-23&to=2026-11-25"))
    reviews = card(week, "review")
    # nothing was decided this week; E is still breached, so 0 of 1 judged
    assert counts(reviews) == {"met": 0, "met_late": 0, "breached": 1, "open": 1, "at_risk": 1}
    assert 'data-sla="attainment">0 %' in reviews
    assert "nothing finished in this period" in reviews

    refused = dashboard(fixture["adam"], "?from=2026-11-25&to=2026-11-01")
    assert refused.status_code == 400
    body = text(refused)
    assert "The end date is before the start date." in body and 'aria-invalid="true"' in body
    assert "here are the last 4 weeks instead" in body
    assert dashboard(fixture["adam"], "?from=2026-01-01&to=2026-11-25").status_code == 400  # over a quarter
    assert dashboard(fixture["adam"], "?from=yesterday&to=2026-11-25").status_code == 400


def test_the_dashboard_makes_as_many_queries_whatever_the_number_of_items(fixture, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as few:
        assert dashboard(fixture["adam"]).status_code == 200
    for n in range(3):
        submit(fixture["ana"], f"More {n}", at(24, 10 + n), model=f"more_{n}")
        open_incident(f"more_{n}", "model_failed", at(24, 10 + n))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert dashboard(fixture["adam"]).status_code == 200


def test_an_empty_dashboard_says_so(people):
    page = text(dashboard(people["adam"]))
    assert "nothing was due in this period" in card(page, "review")
    assert "Nothing is at risk or breached" in page


# --------------------------------------------------------------------------- who may open the pages


@pytest.mark.parametrize("persona", ["analyst", "reviewer", "viewer", "outsider"])
def test_only_platform_admins_open_the_sla_pages(request, persona):
    client = client_for(request.getfixturevalue(persona))
    assert client.get("/sla/").status_code == 403
    assert client.get("/sla/settings/").status_code == 403
    assert client.post("/sla/settings/", {"action": "add_day", "date": "2026-12-24"}).status_code == 403
    assert not ClosingDay.objects.exists()


def test_the_services_refuse_anyone_but_a_platform_admin(reviewer):
    with pytest.raises(PermissionDenied):
        settings_service.update_settings(reviewer, review_days=2)
    with pytest.raises(PermissionDenied):
        settings_service.add_closing_day(reviewer, "2026-12-24", "Christmas Eve")
    with pytest.raises(PermissionDenied):
        settings_service.remove_closing_day(reviewer, 1)


def test_the_dashboard_is_in_the_menu_of_platform_admins(admin):
    page = text(client_for(admin).get("/"))
    assert '<a href="/sla/">SLA dashboard</a>' in page


# --------------------------------------------------------------------------- the settings


def settings_body(**changed) -> dict[str, str]:
    body = {"action": "settings", "review_days": "3", "incident_hours": "4", "run_tolerance_minutes": "5",
            "freshness_tolerance_minutes": "15", "at_risk_percent": "75", "review_target": "95",
            "incident_target": "95", "run_target": "99"}
    return {**body, **{k: str(v) for k, v in changed.items()}}


def test_the_settings_page_shows_the_settings_and_saves_them_audited(admin):
    client = client_for(admin)
    page = text(client.get("/sla/settings/"))
    assert 'name="review_days" required value="3"' in page and 'name="at_risk_percent" required value="75"' in page
    assert "DMAAS_WORKING_HOURS" in page

    response = client.post("/sla/settings/", settings_body(review_days="2.5", at_risk_percent="80", run_target="98.5"))
    assert response.status_code == 302 and response["Location"] == "/sla/settings/"
    rules = SlaSettings.current()
    assert (rules.review_days, rules.at_risk, rules.run_target, rules.incident_hours) == (2.5, 0.8, 98.5, 4.0)
    entry = AuditEntry.objects.get(action="sla.settings")
    assert entry.actor == admin and entry.source == "page"
    assert entry.details == {"before": {"review_days": 3.0, "at_risk": 0.75, "run_target": 99.0},
                             "after": {"review_days": 2.5, "at_risk": 0.8, "run_target": 98.5}}
    assert "settings are saved; the dashboard and the clocks use them" in text(client.get("/sla/settings/"))

    # the same values again: nothing to save, nothing audited
    client.post("/sla/settings/", settings_body(review_days="2.5", at_risk_percent="80", run_target="98.5"))
    assert AuditEntry.objects.filter(action="sla.settings").count() == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("review_days", "abc", "Enter a number."),
    ("review_days", "0", "The review allowance must be from 0.5 to 30 working days."),
    ("incident_hours", "", "This field is required."),
    ("run_tolerance_minutes", "2.5", "Enter a whole number."),
    ("freshness_tolerance_minutes", "-1", "The freshness tolerance must be from 0 to 10080 minutes."),
    ("at_risk_percent", "100", "“At risk” is a share of the allowance from 1 % to 99 % (0.01 to 0.99)."),
    ("incident_target", "101", "The incident target must be from 0 to 100 %."),
])
def test_a_bad_value_is_refused_at_its_field_and_nothing_is_saved(admin, field, value, message):
    response = client_for(admin).post("/sla/settings/", settings_body(**{field: value}, review_target="90"))
    assert response.status_code == 400
    page = text(response)
    field_html = page[page.index(f'name="{field}"'):]
    field_html = field_html[:field_html.index("</p>")]
    assert 'aria-invalid="true"' in field_html and message in field_html
    assert f'value="{value}"' in field_html  # what was typed stays
    assert SlaSettings.current().review_target == 95.0
    assert not AuditEntry.objects.filter(action="sla.settings").exists()


def test_the_settings_service_checks_what_the_api_sends_too(admin):
    with pytest.raises(InvalidInput) as err:
        settings_service.update_settings(admin, review_days=True)
    assert err.value.field == "review_days"
    with pytest.raises(InvalidInput) as err:
        settings_service.update_settings(admin, weekends=2)
    assert err.value.field == "weekends"
    with pytest.raises(InvalidInput) as err:
        settings_service.update_settings(admin, at_risk=75)
    assert err.value.field == "at_risk"
    rules = settings_service.update_settings(admin, incident_hours="6", run_tolerance_minutes=10.0, source="api")
    assert (rules.incident_hours, rules.run_tolerance_minutes) == (6.0, 10)
    assert AuditEntry.objects.get(action="sla.settings").source == "api"
    with pytest.raises(InvalidInput) as err:
        settings_service.add_closing_day(admin, "24.12.2026", "Christmas Eve")
    assert err.value.field == "date"
    with pytest.raises(InvalidInput) as err:
        settings_service.add_closing_day(admin, dt.date(2026, 12, 24), "x" * 101)
    assert err.value.field == "name"


def test_closing_days_are_added_and_removed_and_move_the_clock(fixture):
    adam, rita, d = fixture["adam"], fixture["rita"], fixture["d"]

    def queue_row() -> str:
        with time_machine.travel(NOW, tick=False):
            page = text(client_for(rita).get("/review/?show=all"))
        return row_of(page, f'href="/review/{d.pk}/"')

    assert "2026-11-25 17:00" in queue_row() and "at risk" in queue_row()
    client = client_for(adam)
    response = client.post("/sla/settings/", {"action": "add_day", "date": "2026-11-24", "name": "Company outing"})
    assert response.status_code == 302 and response["Location"] == "/sla/settings/#closing-days"
    day = ClosingDay.objects.get()
    assert (day.date, day.name) == (dt.date(2026, 11, 24), "Company outing")
    entry = AuditEntry.objects.get(action="sla.closing_day.add")
    assert entry.actor == adam and entry.details == {"date": "2026-11-24", "name": "Company outing"}
    page = text(client.get("/sla/settings/"))
    assert "Tue 2026-11-24" in page and "Company outing" in page
    # Tuesday does not count any more: D has used 11 h, and is due a day later
    row = queue_row()
    assert "2026-11-26 17:00" in row and "on track" in row and "13 h left" in row

    again = client.post("/sla/settings/", {"action": "add_day", "date": "2026-11-24", "name": "Twice"})
    assert again.status_code == 400
    assert "2026-11-24 is a closing day already." in text(again) and 'value="Twice"' in text(again)
    bad = client.post("/sla/settings/", {"action": "add_day", "date": "", "name": "No date"})
    assert bad.status_code == 400 and "Give the date as YYYY-MM-DD" in text(bad)

    response = client.post("/sla/settings/", {"action": "remove_day", "pk": str(day.pk)})
    assert response.status_code == 302 and not ClosingDay.objects.exists()
    assert AuditEntry.objects.get(action="sla.closing_day.remove").details["date"] == "2026-11-24"
    assert "2026-11-25 17:00" in queue_row()
    gone = client.post("/sla/settings/", {"action": "remove_day", "pk": str(day.pk)}, follow=True)
    assert f"There is no closing day {day.pk}." in text(gone)


# --------------------------------------------------------------------------- the clocks elsewhere


def test_the_review_queue_shows_each_changes_clock(fixture):
    with time_machine.travel(NOW, tick=False):
        page = text(client_for(fixture["rita"]).get("/review/?show=all"))
    assert "SLA clock" in page

    def clock(change) -> str:
        row = row_of(page, f'href="/review/{change.pk}/"')
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.split('class="sla-cell">', 1)[1].split("</td>")[0])).strip()

    assert clock(fixture["d"]) == "at risk 5 h left"
    assert clock(fixture["e"]) == "breached 19 h over"
    assert clock(fixture["b"]) == "paused 14 h left"  # waits on its author: 10 of 24 h used
    assert clock(fixture["a"]) == "met in 4 h"  # approved, not merged yet
    assert clock(fixture["c"]) == "met late 8 h over"
    assert "badge-sla-at_risk" in row_of(page, f'href="/review/{fixture["d"].pk}/"')


def test_the_incident_list_shows_each_reaction_clock_in_a_fixed_number_of_queries(
        fixture, django_assert_max_num_queries):
    client = client_for(fixture["adam"])
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as few:
        page = text(client.get("/incidents/"))
    assert "Reaction clock" in page

    def clock(incident) -> str:
        row = row_of(page, f'href="/incidents/{incident.pk}/"')
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.split('class="sla-cell">', 1)[1].split("</td>")[0])).strip()

    assert clock(fixture["i3"]) == "at risk 1 h left due Wed 2026-11-25 13:00"
    assert clock(fixture["i4"]) == "breached 7 h over due Tue 2026-11-24 13:00"
    assert clock(fixture["i1"]) == "met in 2 h"
    assert clock(fixture["i2"]) == "met late 1 h over"

    for n in range(5):
        open_incident(f"more_{n}", "model_failed", at(25, 10))
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(len(few.captured_queries)):
        page = text(client.get("/incidents/"))
    assert page.count('class="sla-cell"') == 9


def test_the_review_queue_makes_as_many_queries_whatever_the_number_of_changes(
        fixture, django_assert_max_num_queries):
    client = client_for(fixture["rita"])
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as few:
        assert client.get("/review/?show=all").status_code == 200
    for n in range(3):
        submit(fixture["ana"], f"More {n}", at(24, 10 + n), model=f"more_{n}")
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(len(few.captured_queries)):
        page = text(client.get("/review/?show=all"))
    assert page.count('class="sla-cell"') == 8


def test_amounts_of_time_in_words():
    assert amount_words(dt.timedelta(hours=3, minutes=30)) == "3.5 h"
    assert amount_words(-dt.timedelta(hours=2)) == "2 h"
    assert amount_words(dt.timedelta(minutes=45)) == "45 min"
    assert amount_words(dt.timedelta(hours=19, minutes=2)) == "19 h"
