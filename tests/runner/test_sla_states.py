"""The SLA items' states (issue 8, item 6): each promise on track, at risk, breached, met and met late.

The facts are made through the real services at frozen moments (time_machine), so the audit trail and
the rows the clock reads are the ones production writes. The company's week here: Monday to Friday,
09:00-17:00 Europe/Berlin, German holidays; February 2027 has none. Monday 1 February 2027 09:00
(08:00 UTC) is the start of most stories. Reviews: 3 working days (24 working hours), at risk from
18 h; incidents: 4 working hours, at risk from 3 h; runs: start within 5 minutes of the slot.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from models_service import changes, index, review
from models_service.models import ChangeRequest
from models_service.project_files import ModelSpec
from models_service.repo import get_store
from runner import incidents, runs
from runner.models import Incident, NodeRun, ReviewPolicy, Run, RunStatus, Schedule, SlaSettings
from runner.sla import agreement, clock
from tests.personas import make_user
from tests.runner.conftest import commit_to_main as _commit

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


MONDAY = at(2027, 2, 1, 9, 0)


@pytest.fixture(autouse=True)
def company_week(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.DMAAS_WORKING_DAYS = "mon-fri"
    settings.DMAAS_WORKING_HOURS = "09:00-17:00"
    settings.DMAAS_HOLIDAYS = "DE"


@pytest.fixture
def people(db):
    return make_user("ana", "analyst"), make_user("rita", "reviewer"), make_user("adam", "admin")


# --------------------------------------------------------------------------- reviews


def submit(analyst, sql: str = "select 1 as id\n") -> ChangeRequest:
    change = changes.open_change(analyst, "Orders by day")
    changes.save_model(analyst, change, "orders", sql, ModelSpec("orders"))
    return changes.submit_change(analyst, change)


def review_item(change: ChangeRequest) -> agreement.Item:
    [item] = agreement.review_items(clock(), SlaSettings.current(), timezone.now(), changes=[change])
    return item


def head(change: ChangeRequest) -> str:
    return get_store().tip(ChangeRequest.objects.get(pk=change.pk).branch)


def test_a_review_is_on_track_then_at_risk_at_three_quarters_then_breached(people):
    analyst, _, _ = people
    with time_machine.travel(MONDAY, tick=False) as clock_on_the_wall:
        change = submit(analyst)
        first = review_item(change)
        assert (first.state, first.used, first.allowance) == ("on_track", dt.timedelta(0), 24 * H)
        assert first.due == at(2027, 2, 3, 17, 0) and first.started == MONDAY  # the end of the third day

        clock_on_the_wall.move_to(at(2027, 2, 2, 10, 0))  # Tuesday: 9 h used
        item = review_item(change)
        assert (item.state, item.used, item.left) == ("on_track", 9 * H, 15 * H)

        clock_on_the_wall.move_to(at(2027, 2, 3, 10, 59))  # Wednesday: 17 h 59 min, just under 75 %
        assert review_item(change).state == "on_track"
        clock_on_the_wall.move_to(at(2027, 2, 3, 11, 0))  # 18 h of 24: at risk
        item = review_item(change)
        assert (item.state, item.used) == ("at_risk", 18 * H)

        clock_on_the_wall.move_to(at(2027, 2, 3, 23, 0))  # the evening does not count
        assert review_item(change).used == 24 * H and review_item(change).state == "at_risk"
        clock_on_the_wall.move_to(at(2027, 2, 4, 9, 1))  # Thursday 09:01: over
        item = review_item(change)
        assert (item.state, item.used, item.finished) == ("breached", 24 * H + M, None)
        assert item.left == -M and item.owner == "ana" and item.link == {"change": change.pk}


def test_a_review_decided_in_time_is_met_and_a_late_one_met_late(people):
    analyst, reviewer, _ = people
    with time_machine.travel(MONDAY, tick=False) as clock_on_the_wall:
        in_time, late = submit(analyst), submit(analyst, "select 2 as id\n")
        clock_on_the_wall.move_to(at(2027, 2, 2, 12, 0))
        review.approve_change(reviewer, in_time, head(in_time))
        clock_on_the_wall.move_to(at(2027, 2, 4, 12, 0))
        review.request_changes(reviewer, late, "Name the column order_id.")
        met, met_late = review_item(in_time), review_item(late)
    assert (met.state, met.used, met.finished) == ("met", 11 * H, at(2027, 2, 2, 12, 0))
    # sending it back is a decision too: 27 working hours after submission
    assert (met_late.state, met_late.used, met_late.finished) == ("met_late", 27 * H, at(2027, 2, 4, 12, 0))


def test_the_clock_pauses_while_changes_are_requested_and_resumes_with_the_time_used(people):
    analyst, reviewer, _ = people
    with time_machine.travel(MONDAY, tick=False) as clock_on_the_wall:
        change = submit(analyst)
        clock_on_the_wall.move_to(at(2027, 2, 1, 15, 0))  # 6 h used, then sent back
        review.request_changes(reviewer, change, "Add a test.")
        clock_on_the_wall.move_to(at(2027, 2, 2, 16, 0))  # a day with the author: the reviewer is not late
        paused = review_item(change)
        assert (paused.state, paused.used) == ("met", 6 * H)

        clock_on_the_wall.move_to(at(2027, 2, 3, 9, 0))  # Wednesday: saved and submitted again
        changes.save_model(analyst, change, "orders", "select 3 as id\n", ModelSpec("orders"))
        changes.submit_change(analyst, ChangeRequest.objects.get(pk=change.pk))
        clock_on_the_wall.move_to(at(2027, 2, 3, 12, 0))
        item = review_item(change)
    assert (item.state, item.used, item.finished) == ("on_track", 9 * H, None)  # 6 h + 3 h, not the pause
    assert item.started == MONDAY  # the first submission
    assert item.due == at(2027, 2, 5, 11, 0)  # 18 h left from Wednesday 09:00


def test_an_auto_approval_meets_the_review_at_once(people):
    analyst, _, _ = people
    with time_machine.travel(at(2027, 2, 2, 14, 30), tick=False):
        change = submit(analyst)
        assert review.approve_by_policy(change, head(change), "fast_build", {"seconds": 3}) is not None
        item = review_item(change)
    assert (item.state, item.used, item.finished) == ("met", dt.timedelta(0), at(2027, 2, 2, 14, 30))


def test_a_save_that_withdraws_an_approval_restarts_the_clock_from_the_save(people):
    """A save after an approval sends the change back to "submitted" (no change.submit entry, only
    change.approval_withdrawn): it waits for a reviewer again from the save, with the time used before.
    The clock must neither count the first round twice nor the hours it sat approved."""
    analyst, reviewer, _ = people
    ReviewPolicy.objects.update_or_create(pk=1, defaults={"merge_on_approval": False})
    with time_machine.travel(MONDAY, tick=False) as clock_on_the_wall:
        change = submit(analyst)
        clock_on_the_wall.move_to(at(2027, 2, 1, 13, 0))  # approved after 4 h
        review.approve_change(reviewer, change, head(change))
        clock_on_the_wall.move_to(at(2027, 2, 2, 9, 0))  # Tuesday: the author saves again
        changes.save_model(analyst, change, "orders", "select 4 as id\n", ModelSpec("orders"))
        assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"
        clock_on_the_wall.move_to(at(2027, 2, 2, 13, 0))
        item = review_item(change)
    assert item.state == "on_track" and item.finished is None
    assert item.used == 8 * H  # 4 h before the approval + 4 h since the save


# --------------------------------------------------------------------------- incidents


def incident_item(incident: Incident) -> agreement.Item:
    [item] = agreement.incident_items(clock(), SlaSettings.current(), timezone.now(), incidents=[incident])
    return item


def test_an_incident_goes_on_track_at_risk_breached(people):
    with time_machine.travel(at(2027, 2, 1, 10, 0), tick=False) as clock_on_the_wall:
        incident = incidents.report("orders", "model_failed", "boom")
        clock_on_the_wall.move_to(at(2027, 2, 1, 11, 0))
        item = incident_item(incident)
        assert (item.state, item.used, item.allowance, item.due) == ("on_track", H, 4 * H, at(2027, 2, 1, 14, 0))
        clock_on_the_wall.move_to(at(2027, 2, 1, 13, 0))  # 3 h of 4
        assert incident_item(incident).state == "at_risk"
        clock_on_the_wall.move_to(at(2027, 2, 1, 14, 30))
        item = incident_item(incident)
        assert (item.state, item.used) == ("breached", 4.5 * H)
        assert item.key == f"incident:{incident.pk}" and item.link == {"incident": incident.pk}


def test_an_incident_acknowledged_in_time_is_met_and_late_is_met_late(people):
    _, _, admin = people
    with time_machine.travel(at(2027, 2, 5, 15, 0), tick=False) as clock_on_the_wall:  # a Friday afternoon
        quick = incidents.report("orders", "model_failed", "boom")
        slow = incidents.report("customers", "test_failed", "boom")
        clock_on_the_wall.move_to(at(2027, 2, 8, 10, 30))  # Monday: 2 h + 1.5 h of working time
        incidents.acknowledge(admin, quick.pk, "looking")
        clock_on_the_wall.move_to(at(2027, 2, 8, 12, 0))  # 5 h
        incidents.acknowledge(admin, slow.pk, "late, sorry")
        met, late = incident_item(quick), incident_item(slow)
    assert (met.state, met.used, met.finished) == ("met", 3.5 * H, at(2027, 2, 8, 10, 30))
    assert (late.state, late.used) == ("met_late", 5 * H)


def test_an_incident_resolved_without_acknowledgement_is_answered_by_the_resolution(people):
    _, _, admin = people
    with time_machine.travel(at(2027, 2, 1, 10, 0), tick=False) as clock_on_the_wall:
        incident = incidents.report("orders", "model_failed", "boom")
        clock_on_the_wall.move_to(at(2027, 2, 1, 11, 0))
        incidents.assign(admin, incident.pk, "ana")
        incidents.resolve(admin, incident.pk, "Fixed the join.")
        item = incident_item(incident)
    assert (item.state, item.used, item.owner) == ("met", H, "ana")


# --------------------------------------------------------------------------- runs and freshness

SLOT = at(2027, 2, 1, 10, 0)  # the hourly schedule's 10:00 slot (09:00 UTC)


@pytest.fixture
def main_models(duck, people):
    _commit({"models/orders.sql": "{{ config(materialized='table') }}select 1 as id\n"})
    index.rebuild(get_store())
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(created_at=SLOT - 2 * H)  # made before the slots here
    return Schedule.objects.get(pk=schedule.pk)


def run_items(since: dt.datetime = SLOT - M) -> dict[dt.datetime, agreement.Item]:
    items = agreement.run_items(SlaSettings.current(), timezone.now(), since)
    return {i.started: i for i in items}


def fire(schedule: Schedule, slot: dt.datetime) -> Run | None:
    return runs.fire_schedule(schedule.pk, slot.astimezone(dt.UTC))


def test_a_run_started_within_five_minutes_is_met_and_a_later_one_met_late(main_models):
    with time_machine.travel(SLOT + 3 * M, tick=False) as clock_on_the_wall:
        on_time = fire(main_models, SLOT)
        assert on_time.started_at == SLOT + 3 * M
        Run.objects.filter(pk=on_time.pk).update(status=RunStatus.SUCCESS, finished_at=SLOT + 4 * M)
        clock_on_the_wall.move_to(SLOT + H + 10 * M)
        late = fire(main_models, SLOT + H)
        items = run_items()
    met, met_late = items[SLOT], items[SLOT + H]
    assert (met.state, met.used, met.allowance, met.finished) == ("met", 3 * M, 5 * M, SLOT + 3 * M)
    assert met.key == f"run:{main_models.pk}:{SLOT.astimezone(dt.UTC).isoformat()}"
    assert met.link == {"run": on_time.pk} and met.title == "Hourly production run at 2027-02-01 10:00"
    assert (met_late.state, met_late.used, met_late.link) == ("met_late", 10 * M, {"run": late.pk})


def test_a_skipped_slot_and_one_never_started_are_breached(main_models):
    with time_machine.travel(SLOT + M, tick=False) as clock_on_the_wall:
        going = fire(main_models, SLOT)  # still running at 11:00
        assert going.status == RunStatus.RUNNING
        clock_on_the_wall.move_to(SLOT + H + M)
        skipped = fire(main_models, SLOT + H)
        assert skipped.status == RunStatus.SKIPPED
        clock_on_the_wall.move_to(SLOT + 2 * H + 4 * M)  # the 12:00 slot has no run yet: within the tolerance
        items = run_items()
        assert items[SLOT + 2 * H].state == "on_track" and items[SLOT + 2 * H].due == SLOT + 2 * H + 5 * M
        clock_on_the_wall.move_to(SLOT + 2 * H + 6 * M)  # never started
        items = run_items()
    assert items[SLOT].state == "met"
    assert (items[SLOT + H].state, items[SLOT + H].link) == ("breached", {"run": skipped.pk})
    assert (items[SLOT + 2 * H].state, items[SLOT + 2 * H].used, items[SLOT + 2 * H].link) == (
        "breached", 6 * M, {})
    assert set(items) == {SLOT, SLOT + H, SLOT + 2 * H}


def test_a_model_is_fresh_within_the_hourly_period_and_its_tolerance(main_models):
    from tests.runner.test_runs import drain

    with time_machine.travel(SLOT + 2 * M, tick=False) as clock_on_the_wall:
        run = drain(fire(main_models, SLOT))
        assert run.status == RunStatus.SUCCESS, run.message
        _commit({"models/never_built.sql": "select 2 as id\n"})  # merged after the run
        index.rebuild(get_store())
        built = NodeRun.objects.get(run=run, name="orders").finished_at
        assert built == SLOT + 2 * M
        clock_on_the_wall.move_to(SLOT + H)
        fresh = {i.title: i for i in agreement.freshness_items(SlaSettings.current(), timezone.now())}
        assert (fresh["orders"].state, fresh["orders"].allowance, fresh["orders"].due) == (
            "met", 75 * M, built + 75 * M)
        assert fresh["never_built"].state == "breached" and fresh["never_built"].finished is None
        clock_on_the_wall.move_to(built + 76 * M)  # no run since: stale
        fresh = {i.title: i for i in agreement.freshness_items(SlaSettings.current(), timezone.now())}
    assert (fresh["orders"].state, fresh["orders"].used) == ("breached", 76 * M)
