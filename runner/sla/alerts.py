"""Alerts of the service agreement (issue 8): an item going at risk or breached is told once.

`sweep` (beat, every 5 minutes) computes the open items: the reviews waiting for a reviewer, the
incidents nobody has acknowledged (or resolved), and the run slots of the last day. For each item at
risk or breached it first claims the transition by creating its SlaAlert row (kind, item, state: a
unique key). An IntegrityError means another sweep claimed it already, and this one sends nothing;
so however many sweeps run, at once or one after another, each transition is told once. Once the
claim is committed, the people are e-mailed and DMAAS_SLA_WEBHOOK (when set) gets the item as JSON.

Who is told: a review, every active reviewer with an e-mail address (and the platform admins once it
is breached); an incident, its assignee, else the platform admins; a run slot, the platform admins.

`digest` (beat, daily at 08:00) e-mails the platform admins yesterday's breaches and what is at risk
now, once a day (an SlaAlert row of kind "digest" whose item is the local date of the digest).

Sending never raises: a mail server or webhook that is down is logged (the claim stays, so the
transition is not told again: alerts are sent at most once, never twice).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from models_service.access import Role
from models_service.models import ChangeRequest, ChangeState

from ..models import Incident, IncidentStatus, SlaAlert, SlaSettings
from . import agreement, clock
from .agreement import Item

log = logging.getLogger(__name__)
ALERTING = ("at_risk", "breached")
RUN_WINDOW = dt.timedelta(days=1)  # the run slots a sweep looks at
STATE_WORDS = {"at_risk": "at risk", "breached": "breached", "met_late": "met late", "met": "met",
               "on_track": "on track"}
KIND_WORDS = {"review": "Review", "incident": "Incident", "run": "Scheduled run"}


# --------------------------------------------------------------------------- the sweep


def open_items(now: dt.datetime) -> list[Item]:
    """The items a sweep judges: reviews waiting for a reviewer, incidents not yet acknowledged nor
    resolved, and every run slot of the last day."""
    c = clock()
    rules = SlaSettings.current()
    waiting = list(ChangeRequest.objects.filter(state=ChangeState.SUBMITTED))
    unanswered = list(Incident.objects.filter(status=IncidentStatus.OPEN, acknowledged_at__isnull=True,
                                              resolved_at__isnull=True))
    items: list[Item] = []
    if waiting:
        items += agreement.review_items(c, rules, now, changes=waiting)
    if unanswered:
        items += agreement.incident_items(c, rules, now, incidents=unanswered)
    items += agreement.run_items(rules, now, now - RUN_WINDOW)
    return items


def claim(kind: str, item: str, state: str) -> bool:
    """Take the right to tell this transition: True once, False for every later (or concurrent) try."""
    try:
        with transaction.atomic():
            SlaAlert.objects.create(kind=kind, item=item[:100], state=state)
    except IntegrityError:
        return False
    return True


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """Tell each open item's new at-risk or breached state, once. Answers what it did."""
    now = now or timezone.now()
    items = open_items(now)
    sent = already = 0
    for item in items:
        if item.state not in ALERTING:
            continue
        if not claim(item.kind, item.key, item.state):
            already += 1
            continue
        sent += 1
        transaction.on_commit(lambda item=item: notify(item))
    return {"checked": len(items), "sent": sent, "already_sent": already}


# --------------------------------------------------------------------------- who is told, and how


def _emails(users: Iterable[Any]) -> set[str]:
    return {u.email for u in users if u.email}


def _group(role: Role) -> set[str]:
    return _emails(get_user_model().objects.filter(is_active=True, groups__name=role.value).exclude(email=""))


def admins() -> set[str]:
    """The platform admins' addresses."""
    return _group(Role.ADMIN)


def recipients(item: Item) -> list[str]:
    if item.kind == "review":
        people = _group(Role.REVIEWER)
        if item.state == "breached":
            people |= admins()
        return sorted(people)
    if item.kind == "incident":
        incident = Incident.objects.select_related("assignee").filter(pk=item.link.get("incident")).first()
        assignee = incident.assignee if incident is not None else None
        if assignee is not None and assignee.is_active and assignee.email:
            return [assignee.email]
        return sorted(admins())
    return sorted(admins())


def page_of(item: Item) -> str:
    """The portal's page of the item (a path: the portal does not know its own address)."""
    if "change" in item.link:
        return f"/review/{item.link['change']}/"
    if "incident" in item.link:
        return f"/incidents/{item.link['incident']}/"
    if "run" in item.link:
        return f"/runs/{item.link['run']}/"
    return "/runs/"


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if abs(hours) >= 1 else f"{delta.total_seconds() / 60:.0f} min"


def _local(instant: dt.datetime | None) -> str:
    if instant is None:
        return "-"
    return f"{instant.astimezone(ZoneInfo(settings.TIME_ZONE)):%Y-%m-%d %H:%M %Z}"


def describe(item: Item) -> str:
    used = f"{_hours(item.used)} of {_hours(item.allowance)}"
    working = "" if item.kind == "run" else " working time"
    lines = [f"{KIND_WORDS.get(item.kind, item.kind)}: {item.title}",
             f"State: {STATE_WORDS.get(item.state, item.state)}",
             f"Used: {used}{working}" + (f", {_hours(item.left)} left" if item.left > dt.timedelta(0) else ""),
             f"Due: {_local(item.due)}"]
    if item.owner:
        lines.append(f"Owner: {item.owner}")
    lines.append(f"Page: {page_of(item)}")
    return "\n".join(lines)


def notify(item: Item) -> None:
    """E-mail the item's people and POST DMAAS_SLA_WEBHOOK. Never raises."""
    words = STATE_WORDS.get(item.state, item.state)
    subject = f"[dmaas] SLA {words}: {KIND_WORDS.get(item.kind, item.kind).lower()} {item.title}"[:200]
    try:
        to = recipients(item)
        if to:
            send_mail(subject, describe(item), None, to, fail_silently=False)
    except Exception:  # noqa: BLE001 - a mail server down must not stop the sweep
        log.warning("could not e-mail the SLA alert %s %s", item.key, item.state, exc_info=True)
    post({"event": f"sla.{item.state}", "item": item.as_dict()})


def post(payload: dict[str, Any]) -> None:
    """POST the payload to DMAAS_SLA_WEBHOOK as JSON, when set. Never raises."""
    url = getattr(settings, "DMAAS_SLA_WEBHOOK", "")
    if not url:
        return
    data = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - an admin-set http(s) URL
            pass
    except Exception:  # noqa: BLE001
        log.warning("could not post the SLA alert to %s", url, exc_info=True)


# --------------------------------------------------------------------------- the daily digest


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    return start, end


def digest_items(now: dt.datetime) -> tuple[list[Item], list[Item]]:
    """(yesterday's breaches, what is at risk now). A breach of yesterday is an item that broke its
    promise yesterday: still open past a due time that fell yesterday, or met late yesterday."""
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    start, end = _day_bounds(today - dt.timedelta(days=1))
    c = clock()
    rules = SlaSettings.current()
    items = (agreement.review_items(c, rules, now, since=start) + agreement.incident_items(c, rules, now, since=start)
             + agreement.run_items(rules, now, start))
    breaches = []
    for item in items:
        when = item.due if item.state == "breached" else item.finished if item.state == "met_late" else None
        if when is not None and start <= when < end:
            breaches.append(item)
    at_risk = [i for i in items if i.state == "at_risk"]
    breaches.sort(key=lambda i: (i.kind, i.due or i.started))
    at_risk.sort(key=lambda i: i.left)
    return breaches, at_risk


def digest(now: dt.datetime | None = None) -> dict[str, Any]:
    """Once a day: e-mail the platform admins yesterday's breaches and what is at risk now."""
    now = now or timezone.now()
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    if not claim("digest", today.isoformat(), "sent"):
        return {"date": today.isoformat(), "sent": False}
    breaches, at_risk = digest_items(now)
    yesterday = today - dt.timedelta(days=1)
    parts = [f"The service agreement on {yesterday:%A %d %B %Y} and now ({_local(now)}).", "",
             f"Breached yesterday ({len(breaches)}):"]
    parts += [f"- {_line(i)}" for i in breaches] or ["- nothing"]
    parts += ["", f"At risk now ({len(at_risk)}):"]
    parts += [f"- {_line(i)}" for i in at_risk] or ["- nothing"]
    parts += ["", "The SLA dashboard: /api/v1/sla/report"]
    subject = f"[dmaas] SLA digest {today:%Y-%m-%d}: {len(breaches)} breached yesterday, {len(at_risk)} at risk"
    to = sorted(admins())
    body = "\n".join(parts)

    def send() -> None:
        try:
            if to:
                send_mail(subject, body, None, to, fail_silently=False)
        except Exception:  # noqa: BLE001
            log.warning("could not e-mail the SLA digest of %s", today, exc_info=True)

    transaction.on_commit(send)
    return {"date": today.isoformat(), "sent": True, "breached": len(breaches), "at_risk": len(at_risk),
            "recipients": len(to)}


def _line(item: Item) -> str:
    words = STATE_WORDS.get(item.state, item.state)
    return (f"{KIND_WORDS.get(item.kind, item.kind)} {item.title} ({words}, {_hours(item.used)} of "
            f"{_hours(item.allowance)}, due {_local(item.due)}) {page_of(item)}")
