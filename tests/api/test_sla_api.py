"""The API of the service agreement (issue 8, item 5): settings, closing days, items and the report.

The facts are made through the services at frozen moments (time_machine) in February 2027 (Monday
to Friday 09:00-17:00 Europe/Berlin, no holiday); API clients log in inside the frozen time, so their
sessions are fresh there. Platform admins only: everyone else gets a 403.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine

from models_service import audit, changes, review
from models_service.project_files import ModelSpec
from models_service.repo import get_store
from runner import incidents
from runner.models import ClosingDay, Run, Schedule, SlaSettings
from tests.api.conftest import client_for
from tests.personas import make_user

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def company_week(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.DMAAS_WORKING_DAYS = "mon-fri"
    settings.DMAAS_WORKING_HOURS = "09:00-17:00"
    settings.DMAAS_HOLIDAYS = "DE"


@pytest.fixture
def people(db):
    return make_user("ana", "analyst"), make_user("rita", "reviewer"), make_user("adam", "admin")


def error_of(response, status: int, field) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    return error


# --------------------------------------------------------------------------- settings


def test_the_settings_are_read_and_changed_by_platform_admins(people):
    analyst, reviewer, admin = people
    client = client_for(admin)
    body = client.get("/api/v1/sla/settings").json()
    assert (body["review_days"], body["incident_hours"], body["run_tolerance_minutes"], body["at_risk"]) == (
        3.0, 4.0, 5, 0.75)
    changed = client.patch("/api/v1/sla/settings", {"review_days": 2, "at_risk": 0.8}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["review_days"], changed.json()["at_risk"], changed.json()["incident_hours"]) == (
        2.0, 0.8, 4.0)
    rules = SlaSettings.current()
    assert (rules.review_days, rules.at_risk) == (2.0, 0.8)
    entry = audit.entries(action="sla.settings").first()
    assert entry.source == "api" and entry.actor_name == "adam" and entry.details["after"]["review_days"] == 2.0
    for user in (analyst, reviewer):
        assert client_for(user).get("/api/v1/sla/settings").status_code == 403
        assert client_for(user).patch("/api/v1/sla/settings", {"review_days": 1}, format="json").status_code == 403
    assert SlaSettings.current().review_days == 2.0


@pytest.mark.parametrize(("body", "field"), [
    ({"at_risk": 1.5}, "at_risk"),  # out of range: the service says so
    ({"review_days": 0}, "review_days"),
    ({"run_tolerance_minutes": 2.5}, "run_tolerance_minutes"),
    ({"incident_hours": "soon"}, "incident_hours"),  # not a number
    ({"review_days": 2, "weekends": True}, "weekends"),  # no such setting
])
def test_a_bad_setting_is_a_400_naming_it_and_nothing_changes(people, body, field):
    *_, admin = people
    error = error_of(client_for(admin).patch("/api/v1/sla/settings", body, format="json"), 400, field)
    assert error["message"]
    assert SlaSettings.current().review_days == 3.0 and SlaSettings.current().at_risk == 0.75


def test_an_empty_patch_is_a_400(people):
    *_, admin = people
    error_of(client_for(admin).patch("/api/v1/sla/settings", {}, format="json"), 400, None)


# --------------------------------------------------------------------------- closing days


def test_closing_days_are_added_listed_and_removed(people):
    analyst, _, admin = people
    client = client_for(admin)
    added = client.post("/api/v1/sla/closing-days", {"date": "2027-02-03", "name": "Company day"}, format="json")
    assert added.status_code == 201, added.content
    day = added.json()
    assert (day["date"], day["name"]) == ("2027-02-03", "Company day")
    assert ClosingDay.objects.get().date == dt.date(2027, 2, 3)
    listed = client.get("/api/v1/sla/closing-days").json()
    assert listed["count"] == 1 and listed["results"] == [day]
    error_of(client.post("/api/v1/sla/closing-days", {"date": "2027-02-03"}, format="json"), 400, "date")
    error_of(client.post("/api/v1/sla/closing-days", {"date": "3 Feb"}, format="json"), 400, "date")
    error_of(client.post("/api/v1/sla/closing-days", {"name": "no date"}, format="json"), 400, "date")
    assert client_for(analyst).post("/api/v1/sla/closing-days", {"date": "2027-02-04"},
                                    format="json").status_code == 403
    assert client_for(analyst).delete(f"/api/v1/sla/closing-days/{day['id']}").status_code == 403
    assert client.delete(f"/api/v1/sla/closing-days/{day['id']}").status_code == 204
    assert not ClosingDay.objects.exists()
    error_of(client.delete(f"/api/v1/sla/closing-days/{day['id']}"), 404, None)
    assert {"sla.closing_day.add", "sla.closing_day.remove"} <= set(
        audit.entries().values_list("action", flat=True))


# --------------------------------------------------------------------------- items


def submit(analyst, title: str, sql: str = "select 1 as id\n"):
    change = changes.open_change(analyst, title)
    changes.save_model(analyst, change, "orders", sql, ModelSpec("orders"))
    return changes.submit_change(analyst, change)


def test_the_items_of_each_kind_with_their_clocks(people):
    analyst, _, admin = people
    hourly = Schedule.objects.get()
    with time_machine.travel(at(2027, 2, 1, 9, 0), tick=False) as clock_on_the_wall:
        change = submit(analyst, "Orders by day")
        clock_on_the_wall.move_to(at(2027, 2, 3, 10, 0))
        incident = incidents.report("orders", "model_failed", "boom")
        Schedule.objects.filter(pk=hourly.pk).update(created_at=at(2027, 2, 3, 10, 30))
        clock_on_the_wall.move_to(at(2027, 2, 3, 12, 0))
        client = client_for(admin)

        def items(query: str) -> list[dict]:
            response = client.get(f"/api/v1/sla/items{query}")
            assert response.status_code == 200, response.content
            return response.json()

        [review_item] = items("?kind=review")
        assert (review_item["key"], review_item["state"], review_item["change"], review_item["owner"]) == (
            f"change:{change.pk}", "at_risk", change.pk, "ana")
        assert (review_item["allowance_hours"], review_item["used_hours"], review_item["left_hours"]) == (
            24.0, 19.0, 5.0)
        assert review_item["started"] == "2027-02-01T08:00:00+00:00"
        [incident_item] = items("?kind=incident")
        assert (incident_item["incident"], incident_item["state"], incident_item["used_hours"]) == (
            incident.pk, "on_track", 2.0)
        runs = items("?kind=run")
        assert [(r["title"], r["state"]) for r in runs] == [
            ("Hourly production run at 2027-02-03 11:00", "breached"),  # never started
            ("Hourly production run at 2027-02-03 12:00", "on_track")]
        assert [r["state"] for r in items("?kind=run&state=breached")] == ["breached"]
        # breached, at risk, then on track with the least time left first (the run slot's 5 minutes)
        assert [i["kind"] for i in items("")] == ["run", "review", "run", "incident"]
        assert items("?kind=freshness") == []  # no model on main
        # a closing day today: the review has used 16 h, the incident none
        client.post("/api/v1/sla/closing-days", {"date": "2027-02-03"}, format="json")
        assert items("?kind=review")[0]["used_hours"] == 16.0
        assert items("?kind=incident")[0]["used_hours"] == 0.0
        error_of(client.get("/api/v1/sla/items?kind=everything"), 400, "kind")
        error_of(client.get("/api/v1/sla/items?state=late"), 400, "state")
        assert client_for(analyst).get("/api/v1/sla/items").status_code == 403


# --------------------------------------------------------------------------- the report

START, END = "2027-02-01", "2027-02-15"  # two ISO weeks, 2027-W05 and 2027-W06
NOW = at(2027, 2, 12, 12, 0)  # Friday of the second week


@pytest.fixture
def fortnight(people):
    """Reviews: A met (11 h), B met late (27 h), both decided in W05; C met (2 h) in W06. Incidents: X
    acknowledged after 1 h (W05), Y open since Tuesday of W06 (breached). A daily 06:00 schedule (the
    hourly one off) whose 12 slots so far started a minute late, but the one of 9 February 10 minutes."""
    analyst, reviewer, admin = people
    Schedule.objects.update(enabled=False)
    daily = Schedule.objects.create(name="Daily", cron="0 6 * * *")
    Schedule.objects.filter(pk=daily.pk).update(created_at=at(2027, 1, 30, 0, 0))
    for day in range(1, 13):
        slot = at(2027, 2, day, 6, 0).astimezone(dt.UTC)
        late = dt.timedelta(minutes=10 if day == 9 else 1)
        Run.objects.create(schedule=daily, slot=slot, trigger="schedule", target="analytics", status="success",
                           started_at=slot + late, finished_at=slot + late + dt.timedelta(minutes=5))

    def head(change):
        return get_store().tip(change.branch)

    with time_machine.travel(at(2027, 2, 1, 9, 0), tick=False) as clock_on_the_wall:
        a, b = submit(analyst, "A"), submit(analyst, "B", "select 2 as id\n")
        clock_on_the_wall.move_to(at(2027, 2, 1, 10, 0))
        x = incidents.report("orders", "model_failed", "boom")
        clock_on_the_wall.move_to(at(2027, 2, 1, 11, 0))
        incidents.acknowledge(admin, x.pk, "on it")
        clock_on_the_wall.move_to(at(2027, 2, 2, 12, 0))
        review.approve_change(reviewer, a, head(a))
        clock_on_the_wall.move_to(at(2027, 2, 4, 12, 0))
        review.approve_change(reviewer, b, head(b))
        clock_on_the_wall.move_to(at(2027, 2, 8, 9, 0))
        c = submit(analyst, "C", "select 3 as id\n")
        clock_on_the_wall.move_to(at(2027, 2, 8, 11, 0))
        review.approve_change(reviewer, c, head(c))
        clock_on_the_wall.move_to(at(2027, 2, 9, 10, 0))
        y = incidents.report("customers", "test_failed", "boom")
    return {"admin": admin, "analyst": analyst, "y": y}


def report(user, query: str = f"?start={START}&end={END}"):
    with time_machine.travel(NOW, tick=False):
        return client_for(user).get(f"/api/v1/sla/report{query}")


def test_the_report_has_the_numbers_of_the_period(fortnight):
    response = report(fortnight["admin"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == {"start": "2027-02-01T00:00:00+01:00", "end": "2027-02-15T00:00:00+01:00",
                              "start_date": START, "end_date": END}
    assert body["settings"]["review_days"] == 3.0
    rv = body["review"]
    assert (rv["met"], rv["met_late"], rv["breached"], rv["open"], rv["attainment"], rv["meets_target"]) == (
        2, 1, 0, 0, 66.7, False)
    assert rv["time_to_first_review_hours"] == {"median": 11.0, "p90": 27.0}
    assert rv["owners"] == [{"owner": "ana", "items": 3, "met": 2, "attainment": 66.7}]
    inc = body["incident"]
    assert (inc["met"], inc["met_late"], inc["breached"], inc["attainment"], inc["target"]) == (1, 0, 1, 50.0, 95.0)
    assert inc["time_to_acknowledge_hours"] == {"median": 1.0, "p90": 1.0}
    run = body["run"]
    assert (run["met"], run["met_late"], run["breached"], run["attainment"], run["target"]) == (11, 1, 0, 91.7, 99.0)
    assert body["freshness"] == {"models": 0, "fresh": 0, "stale": []}
    [attention] = body["attention"]
    assert (attention["kind"], attention["incident"], attention["state"]) == ("incident", fortnight["y"].pk,
                                                                             "breached")
    for sla in ("review", "incident", "run"):  # each closed or breached item is in one week
        assert sum(w["items"] for w in body[sla]["weeks"]) == {"review": 3, "incident": 2, "run": 12}[sla]
    assert report(fortnight["analyst"]).status_code == 403


def test_the_report_weeks_are_the_iso_weeks_of_the_local_days(fortnight):
    """2027-02-01 is the Monday of 2027-W05 in Berlin; its local midnight is Sunday 23:00 UTC."""
    body = report(fortnight["admin"]).json()
    assert body["review"]["weeks"] == [{"week": "2027-W05", "items": 2, "met": 1, "attainment": 50.0},
                                       {"week": "2027-W06", "items": 1, "met": 1, "attainment": 100.0}]
    assert body["run"]["weeks"] == [{"week": "2027-W05", "items": 7, "met": 7, "attainment": 100.0},
                                    {"week": "2027-W06", "items": 5, "met": 4, "attainment": 80.0}]


def test_run_punctuality_is_in_minutes(fortnight):
    """11 runs a minute after their slot, one 10 minutes: the median is one minute."""
    assert report(fortnight["admin"]).json()["run"]["punctuality_minutes"] == {"median": 1.0, "p90": 1.0}


def test_the_report_as_csv_has_a_row_per_sla_and_week(fortnight):
    response = report(fortnight["admin"], f"?start={START}&end={END}&as=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="sla-report-2027-02-01-to-2027-02-14.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["sla", "week", "items", "met", "attainment"]
    assert {"review", "incident", "run"} == {r[0] for r in rows[1:]}
    assert ["review", "2027-W05", "2", "1", "50.0"] in rows and ["review", "2027-W06", "1", "1", "100.0"] in rows
    assert ["incident", "2027-W05", "1", "1", "100.0"] in rows and ["incident", "2027-W06", "1", "0", "0.0"] in rows
    assert ["run", "2027-W06", "5", "4", "80.0"] in rows


def test_the_report_defaults_to_the_last_28_days_and_refuses_bad_periods(fortnight):
    admin = fortnight["admin"]
    assert report(admin, "").json()["period"]["start_date"] == "2027-01-16"
    assert report(admin, "").json()["period"]["end_date"] == "2027-02-13"  # today included
    assert report(admin, "?start=2027-02-01").json()["period"]["end_date"] == "2027-03-01"
    error_of(report(admin, "?start=2027-02-10&end=2027-02-10"), 400, "end")
    error_of(report(admin, "?start=2026-01-01&end=2027-02-10"), 400, "start")
    error_of(report(admin, "?start=1 February"), 400, "start")
    error_of(report(admin, "?as=xlsx"), 400, "as")
    # ?format= is DRF's renderer switch: there is no CSV renderer, so it is not the way to ask for CSV
    assert report(admin, "?format=csv").status_code == 404
