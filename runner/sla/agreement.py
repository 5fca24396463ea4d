"""The three promises, item by item, derived from the facts (nothing is stored twice).

- Review: a change's clock runs while it waits for a reviewer: from each submission to the next
  decision (approve or request changes; an auto-approval decides at once), withdrawal or abandonment.
  It pauses while the change waits on its author and resumes, with the time already used, when it is
  submitted again. Allowance: SlaSettings.review_days working days. The facts are the audit log's
  change.submit / approve / request_changes / withdraw / abandon entries.
- Incident: from opening to acknowledgement (or resolution, if nobody acknowledged), in working hours.
- Run: each slot of a cron schedule starts within the tolerance of its time (wall-clock time: runs are
  promised around the clock); a slot skipped or never started is breached. Freshness: each production
  model's last successful build lies within its schedule's period plus a tolerance.

Each item has a state: on_track, at_risk (at least SlaSettings.at_risk of the allowance used), breached
(open and over), met, met_late; `used` and `left` are working time (wall time for runs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from django.db.models import Q
from django.utils import timezone

from models_service.models import AuditEntry, ChangeRequest, ChangeState, IndexedNode, NodeKind

from ..models import Incident, NodeRun, Run, RunStatus, Schedule, SlaSettings
from .clock import Clock

ZERO = dt.timedelta(0)
OPEN_STATES = ("on_track", "at_risk", "breached")
CLOSED_STATES = ("met", "met_late")
REVIEW_ACTIONS = ("change.submit", "change.approve", "change.request_changes", "change.withdraw",
                  "change.abandon", "change.merge", "change.approval_withdrawn")
# a save after an approval sends the change back to "submitted": a new round, from the save
ROUND_STARTS = ("change.submit", "change.approval_withdrawn")


@dataclass
class Item:
    kind: str  # review | incident | run | freshness
    key: str
    title: str
    owner: str
    started: dt.datetime
    allowance: dt.timedelta
    used: dt.timedelta
    state: str
    due: dt.datetime | None = None
    finished: dt.datetime | None = None  # when the promise was met (or broken for good)
    link: dict[str, Any] = field(default_factory=dict)  # {"change": id} / {"incident": id} / {"run": id}

    @property
    def left(self) -> dt.timedelta:
        return self.allowance - self.used

    @property
    def share(self) -> float:
        return self.used / self.allowance if self.allowance else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "title": self.title, "owner": self.owner,
                "state": self.state, "started": self.started.isoformat(),
                "due": self.due.isoformat() if self.due else None,
                "finished": self.finished.isoformat() if self.finished else None,
                "allowance_hours": round(self.allowance.total_seconds() / 3600, 2),
                "used_hours": round(self.used.total_seconds() / 3600, 2),
                "left_hours": round(self.left.total_seconds() / 3600, 2), **self.link}


def _state(used: dt.timedelta, allowance: dt.timedelta, finished: bool, at_risk: float) -> str:
    if finished:
        return "met" if used <= allowance else "met_late"
    if used > allowance:
        return "breached"
    if allowance and used / allowance >= at_risk:
        return "at_risk"
    return "on_track"


# --------------------------------------------------------------------------- reviews


def review_items(clock: Clock, rules: SlaSettings, now: dt.datetime, changes: list[ChangeRequest] | None = None,
                 since: dt.datetime | None = None) -> list[Item]:
    """One item per change that was ever submitted (or those given), from its audit trail."""
    qs = ChangeRequest.objects.select_related("author")
    if changes is not None:
        qs = qs.filter(pk__in=[c.pk for c in changes])
    else:
        submitted = AuditEntry.objects.filter(action="change.submit", object_type="changerequest").values_list(
            "object_id", flat=True)
        qs = qs.filter(Q(pk__in=[int(i) for i in submitted if i.isdigit()]) | Q(
            submitted_at__isnull=False))
        if since is not None:
            qs = qs.exclude(merged_at__lt=since)
    rows = list(qs)
    trails: dict[str, list[tuple[dt.datetime, str]]] = {}
    for at, action, object_id in (AuditEntry.objects.filter(object_type="changerequest", action__in=REVIEW_ACTIONS,
                                                            object_id__in=[str(c.pk) for c in rows])
                                  .order_by("at", "id").values_list("at", "action", "object_id")):
        trails.setdefault(object_id, []).append((at, action))
    allowance = clock.working_days(rules.review_days)
    items = []
    for change in rows:
        trail = trails.get(str(change.pk), [])
        used, waiting_since, decided_at, first_submit, round_by = ZERO, None, None, None, None
        for at, action in trail:
            if action in ROUND_STARTS:
                first_submit = first_submit or at
                if waiting_since is None:
                    waiting_since, round_by = at, action
            elif waiting_since is not None:
                used += clock.between(waiting_since, at)
                waiting_since = None
                if action in ("change.approve", "change.request_changes"):
                    decided_at = at
        if change.state == ChangeState.SUBMITTED and change.submitted_at:
            # the row's submitted_at is the fact for a round a submission began (every submission sets
            # it); a round begun by a save after an approval starts at that save
            if waiting_since is not None and round_by == "change.submit" and waiting_since > change.submitted_at:
                waiting_since = change.submitted_at
            elif waiting_since is None:
                last = trail[-1][0] if trail else change.submitted_at
                waiting_since = max(change.submitted_at, last)
            first_submit = min(first_submit or change.submitted_at, change.submitted_at)
        elif waiting_since is not None and change.state != ChangeState.SUBMITTED:
            waiting_since = None  # the trail missed the decision: the change is not waiting any more
        if first_submit is None:
            continue
        if waiting_since is not None:  # waiting for a reviewer now
            used_now = used + clock.between(waiting_since, now)
            state = _state(used_now, allowance, False, rules.at_risk)
            due = clock.add(waiting_since, max(allowance - used, ZERO))  # when the allowance runs out
            items.append(Item("review", f"change:{change.pk}", change.title, change.author.get_username(),
                              first_submit, allowance, used_now, state, due=due, link={"change": change.pk}))
        elif decided_at is not None:
            items.append(Item("review", f"change:{change.pk}", change.title, change.author.get_username(),
                              first_submit, allowance, used, _state(used, allowance, True, rules.at_risk),
                              finished=decided_at, link={"change": change.pk}))
        # withdrawn or abandoned before any decision: no review was owed
    return items


# --------------------------------------------------------------------------- incidents


def incident_items(clock: Clock, rules: SlaSettings, now: dt.datetime, since: dt.datetime | None = None,
                   incidents: list[Incident] | None = None) -> list[Item]:
    qs = Incident.objects.select_related("assignee")
    if incidents is not None:
        qs = qs.filter(pk__in=[i.pk for i in incidents])
    elif since is not None:
        qs = qs.exclude(resolved_at__lt=since, acknowledged_at__lt=since)
    allowance = dt.timedelta(hours=rules.incident_hours)
    items = []
    for incident in qs:
        reacted = incident.acknowledged_at or incident.resolved_at
        used = clock.between(incident.opened_at, reacted or now)
        state = _state(used, allowance, reacted is not None, rules.at_risk)
        due = clock.add(incident.opened_at, allowance)
        owner = incident.assignee.get_username() if incident.assignee else incident.owner
        items.append(Item("incident", f"incident:{incident.pk}", f"{incident.subject}: "
                          f"{incident.get_cause_display().lower()}", owner, incident.opened_at, allowance, used,
                          state, due=due, finished=reacted, link={"incident": incident.pk}))
    return items


# --------------------------------------------------------------------------- runs and freshness


def run_items(rules: SlaSettings, now: dt.datetime, since: dt.datetime) -> list[Item]:
    """Each slot of each enabled cron schedule from `since` to now: started within the tolerance?"""
    from croniter import croniter

    from ..runs import _zone

    tolerance = dt.timedelta(minutes=rules.run_tolerance_minutes)
    items = []
    for schedule in Schedule.objects.filter(enabled=True).exclude(cron=""):
        begin = max(since, schedule.created_at)
        it = croniter(schedule.cron, begin.astimezone(_zone()) - dt.timedelta(seconds=1))
        slots = []
        for _ in range(24 * 93):  # a quarter of hourly slots at most
            slot = it.get_next(dt.datetime).astimezone(dt.UTC)
            if slot > now:
                break
            slots.append(slot)
        runs = {r.slot: r for r in Run.objects.filter(schedule=schedule, slot__in=slots)}
        for slot in slots:
            run = runs.get(slot)
            title = f"{schedule.name} at {slot.astimezone(_zone()):%Y-%m-%d %H:%M}"
            key = f"run:{schedule.pk}:{slot.isoformat()}"
            if run is not None and run.started_at is not None and run.status != RunStatus.SKIPPED:
                used = max(run.started_at - slot, ZERO)
                state = "met" if used <= tolerance else "met_late"
                items.append(Item("run", key, title, "", slot, tolerance, used, state, due=slot + tolerance,
                                  finished=run.started_at, link={"run": run.pk}))
            else:
                used = now - slot
                state = "breached" if used > tolerance else "on_track"
                items.append(Item("run", key, title, "", slot, tolerance, used, state, due=slot + tolerance,
                                  link={"run": run.pk} if run else {}))
    return items


def freshness_items(rules: SlaSettings, now: dt.datetime) -> list[Item]:
    """Each production model: built successfully within the hourly schedule's period plus tolerance?"""
    from croniter import croniter

    from ..runs import _zone

    schedule = Schedule.objects.filter(enabled=True, select="").exclude(cron="").order_by("pk").first()
    if schedule is None:
        return []
    it = croniter(schedule.cron, now.astimezone(_zone()))
    a, b = it.get_next(dt.datetime), it.get_next(dt.datetime)
    period = b - a
    allowance = period + dt.timedelta(minutes=rules.freshness_tolerance_minutes)
    names = list(IndexedNode.objects.filter(ref="main", kind=NodeKind.MODEL).exclude(materialized="ephemeral")
                 .values_list("name", "owner"))
    last: dict[str, dt.datetime] = {}
    for name, finished in (NodeRun.objects.filter(name__in=[n for n, _ in names], status="success",
                                                  resource_type="model").values_list("name", "finished_at")):
        if finished and (name not in last or finished > last[name]):
            last[name] = finished
    items = []
    for name, owner in names:
        built = last.get(name)
        used = now - built if built else allowance + dt.timedelta(seconds=1)
        state = "met" if used <= allowance else "breached"
        items.append(Item("freshness", f"model:{name}", name, owner, built or now, allowance, used, state,
                          due=built + allowance if built else None, finished=built))
    return items


# --------------------------------------------------------------------------- the report


def _hours(values: list[dt.timedelta]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None}
    hours = sorted(v.total_seconds() / 3600 for v in values)
    p90 = hours[min(len(hours) - 1, max(0, int(round(0.9 * len(hours) + 0.5)) - 1))]
    return {"median": round(median(hours), 2), "p90": round(p90, 2)}


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, int(round(0.9 * len(ordered) + 0.5)) - 1))]
    return {"median": median(ordered), "p90": p90}


def _minutes(values: list[dt.timedelta]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 1)
            for k, v in _percentiles([v.total_seconds() / 60 for v in values]).items()}


def _summary(items: list[Item], target: float, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Attainment over the items that closed in the period, or broke it (breached), with counts."""
    closed = [i for i in items if i.state in CLOSED_STATES and i.finished and start <= i.finished < end]
    breached = [i for i in items if i.state == "breached"]
    met = sum(1 for i in closed if i.state == "met")
    late = sum(1 for i in closed if i.state == "met_late")
    judged = met + late + len(breached)
    attainment = round(100.0 * met / judged, 1) if judged else None
    return {"target": target, "attainment": attainment,
            "meets_target": attainment is None or attainment >= target,
            "met": met, "met_late": late, "breached": len(breached),
            "open": sum(1 for i in items if i.state in ("on_track", "at_risk")),
            "at_risk": sum(1 for i in items if i.state == "at_risk")}


def _weeks(items: list[Item], start: dt.datetime, end: dt.datetime, tz: Any = dt.UTC) -> list[dict[str, Any]]:
    """Attainment per ISO week (of the company's local days) of the items that closed (or breached) in it."""
    buckets: dict[str, list[Item]] = {}
    day = start.astimezone(tz)
    while day < end:
        year, week, _ = day.isocalendar()
        buckets.setdefault(f"{year}-W{week:02d}", [])
        day += dt.timedelta(days=7)
    year, week, _ = (end - dt.timedelta(seconds=1)).astimezone(tz).isocalendar()
    buckets.setdefault(f"{year}-W{week:02d}", [])
    for item in items:
        when = item.finished or item.due or item.started
        if item.state in OPEN_STATES[:2] or when is None or not (start <= when < end):
            continue
        year, week, _ = when.astimezone(tz).isocalendar()
        buckets.setdefault(f"{year}-W{week:02d}", []).append(item)
    out = []
    for label in sorted(buckets):
        group = buckets[label]
        met = sum(1 for i in group if i.state == "met")
        out.append({"week": label, "items": len(group), "met": met,
                    "attainment": round(100.0 * met / len(group), 1) if group else None})
    return out


def _by_owner(items: list[Item], start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    owners: dict[str, list[Item]] = {}
    for item in items:
        closed_in = item.state in CLOSED_STATES and item.finished and start <= item.finished < end
        if closed_in or item.state == "breached":
            owners.setdefault(item.owner or "(nobody)", []).append(item)
    return [{"owner": owner, "items": len(group), "met": sum(1 for i in group if i.state == "met"),
             "attainment": round(100.0 * sum(1 for i in group if i.state == "met") / len(group), 1)}
            for owner, group in sorted(owners.items())]


def report(clock: Clock, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows for the period [start, end)."""
    now = now or timezone.now()
    rules = SlaSettings.current()
    reviews = review_items(clock, rules, now, since=start)
    incidents = incident_items(clock, rules, now, since=start)
    runs = run_items(rules, min(now, end), start)
    fresh = freshness_items(rules, now)
    first_review = [i.used for i in reviews if i.finished and start <= i.finished < end]
    reaction = [i.used for i in incidents if i.finished and start <= i.finished < end]
    attention = [i for i in reviews + incidents + runs if i.state in ("at_risk", "breached")]
    attention.sort(key=lambda i: (i.state != "breached", i.left))
    return {
        "period": {"start": start, "end": end},
        "settings": rules,
        "review": {**_summary(reviews, rules.review_target, start, end), "time_to_first_review_hours":
                   _hours(first_review), "weeks": _weeks(reviews, start, end, clock.tz), "owners": _by_owner(reviews, start, end)},
        "incident": {**_summary(incidents, rules.incident_target, start, end), "time_to_acknowledge_hours":
                     _hours(reaction), "weeks": _weeks(incidents, start, end, clock.tz), "owners": _by_owner(incidents, start, end)},
        "run": {**_summary(runs, rules.run_target, start, end), "weeks": _weeks(runs, start, end, clock.tz),
                "punctuality_minutes": _minutes([i.used for i in runs if i.finished])},
        "freshness": {"models": len(fresh), "fresh": sum(1 for i in fresh if i.state == "met"),
                      "stale": [i for i in fresh if i.state != "met"]},
        "attention": attention,
        "items": {"review": reviews, "incident": incidents, "run": runs},
    }
