"""Incidents: something failed in production, and someone has to react (within 4 working hours).

One incident per subject (a model, or "schedule:<name>") and cause while it is not resolved: a later
failure of the same kind attaches to it (failures + 1, last failure, latest error) instead of opening
another. A later success of the model resolves it with a note. Platform admins acknowledge (with a
note), assign and resolve. On open, acknowledge and resolve, the owner and the admins are told by
e-mail (Django's mail) and a webhook (DMAAS_INCIDENT_WEBHOOK) gets the incident as JSON.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from models_service import access, audit
from models_service.errors import InvalidInput, InvalidState, NotFound
from models_service.models import IndexedNode

from .models import Incident, IncidentCause, IncidentStatus

log = logging.getLogger(__name__)
C, S = IncidentCause, IncidentStatus
OPEN = (S.OPEN, S.ACKNOWLEDGED)
RESOLVED_BY_SUCCESS = (C.MODEL_FAILED, C.TIMEOUT, C.TEST_FAILED)  # a later good build ends them


def _owner(subject: str) -> str:
    node = IndexedNode.objects.filter(ref="main", kind="model", name=subject).only("owner").first()
    return node.owner if node is not None else ""


def report(subject: str, cause: str, error: str, *, run: Any = None, deployment: Any = None,
           hooks: dict[str, list[str]] | None = None) -> Incident:
    """Open an incident, or attach this failure to the open one of the same subject and cause.
    `hooks`: the model's own {"emails": [...], "webhooks": [...]} (its meta `notify`), told as well."""
    now = timezone.now()
    for _ in range(3):
        incident = Incident.objects.filter(subject=subject, cause=cause, status__in=OPEN).first()
        if incident is not None:
            Incident.objects.filter(pk=incident.pk).update(
                failures=incident.failures + 1, last_failure_at=now, error=error[:20_000],
                last_run=run, **({"deployment": deployment} if deployment is not None else {}))
            incident.refresh_from_db()
            return incident
        try:
            with transaction.atomic():
                incident = Incident.objects.create(
                    subject=subject, cause=cause, error=error[:20_000], owner=_owner(subject),
                    first_failure_at=now, last_failure_at=now, run=run, last_run=run, deployment=deployment)
        except IntegrityError:
            continue  # opened by another worker a moment ago: attach to it
        audit.record(None, "incident.open", incident, source="worker", details={"cause": cause})
        if cause in RESOLVED_BY_SUCCESS:
            for _, subjects in list(_open_subjects.values()):
                subjects.add(subject)
        transaction.on_commit(lambda pk=incident.pk: notify(pk, "opened", hooks))
        return incident
    raise RuntimeError("could not open or find the incident")  # pragma: no cover - three races in a row


def report_run(run: Any, cause: str, message: str) -> Incident:
    name = run.schedule.name if run.schedule_id else f"run {run.pk}"
    return report(f"schedule:{name}", cause, message, run=run)


def hooks_of(manifest: Any, name: str) -> dict[str, list[str]]:
    """A model's own failure hooks, from its meta: `notify: [ana@example.com, https://hooks.example/x]`
    (addresses are e-mailed, http(s) URLs get the incident as JSON), or the same under a tag's models in
    dbt_project.yml (`+meta: {notify: [...]}`)."""
    if manifest is None:
        return {}
    node = next((n for n in manifest.nodes.values() if n.name == name and n.resource_type == "model"), None)
    meta = (node.config.get("meta") if node is not None else None) or {}
    targets = meta.get("notify") if isinstance(meta, dict) else None
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list):
        return {}
    emails = [t for t in targets if isinstance(t, str) and "@" in t and not t.startswith("http")]
    webhooks = [t for t in targets if isinstance(t, str) and t.startswith(("http://", "https://"))]
    return {"emails": emails, "webhooks": webhooks}


def after_node(run: Any, results: list[Any], manifest: Any) -> None:
    """Open or attach incidents for a node's failures; resolve the model's open ones on success."""
    for result in results:
        if result.resource_type in ("model", "seed"):
            if result.status == "timeout":
                report(result.name, C.TIMEOUT, result.message or "timeout", run=run,
                       hooks=hooks_of(manifest, result.name))
            elif result.status == "error" and not (result.message or "").startswith("not deployed"):
                report(result.name, C.MODEL_FAILED, result.message or "error", run=run,
                       hooks=hooks_of(manifest, result.name))
            elif result.status == "success" and _may_be_open(result.name, run):
                resolve_by_success(result.name, run)
        elif result.resource_type == "test" and result.status in ("fail", "error", "timeout"):
            model = (result.test or {}).get("model") or result.name
            report(model, C.TEST_FAILED, f"{result.name}: {result.message or result.status}", run=run,
                   hooks=hooks_of(manifest, model))


# The subjects with an incident that a good build resolves, read once per run and process and again
# after OPEN_SUBJECTS_SECONDS: most nodes of a run build fine with nothing open, and asking for each
# was a query per node. An incident opened by another process during the run is seen that much later
# (or by the next run); one this process opens is added at once.
OPEN_SUBJECTS_SECONDS = 10.0
_open_subjects: dict[Any, tuple[float, set[str]]] = {}


def _may_be_open(subject: str, run: Any) -> bool:
    key = getattr(run, "pk", None)
    now = time.monotonic()
    cached = _open_subjects.get(key)
    if key is None or cached is None or now - cached[0] > OPEN_SUBJECTS_SECONDS:
        subjects = set(Incident.objects.filter(status__in=OPEN, cause__in=RESOLVED_BY_SUCCESS).order_by()
                       .values_list("subject", flat=True).distinct())
        _open_subjects.clear()  # one run at a time per target: the last one is enough
        cached = _open_subjects[key] = (now, subjects)
    return subject in cached[1]


def resolve_by_success(subject: str, run: Any) -> int:
    now = timezone.now()
    ids = list(Incident.objects.filter(subject=subject, status__in=OPEN,
                                       cause__in=RESOLVED_BY_SUCCESS).values_list("pk", flat=True))
    if not ids:
        return 0
    done = Incident.objects.filter(pk__in=ids, status__in=OPEN).update(
        status=S.RESOLVED, resolved_at=now, resolution=f"Resolved by run {run.pk}: {subject} built and passed its "
                                                        "tests.")
    for pk in ids:
        transaction.on_commit(lambda pk=pk: notify(pk, "resolved"))
    return done


def resolve_cause(subject: str, cause: str, resolution: str) -> int:
    """Resolve the open incident of `subject` and `cause` with a note, when what caused it is gone
    (the data of a model with an anomaly incident look right again)."""
    ids = list(Incident.objects.filter(subject=subject, cause=cause, status__in=OPEN).values_list("pk", flat=True))
    if not ids:
        return 0
    done = Incident.objects.filter(pk__in=ids, status__in=OPEN).update(
        status=S.RESOLVED, resolved_at=timezone.now(), resolution=resolution[:5000])
    for pk in ids:
        transaction.on_commit(lambda pk=pk: notify(pk, "resolved"))
    return done


def late_runs(now: Any) -> int:
    """A cron schedule whose latest slot (more than DMAAS_RUN_LATE_SECONDS ago) has no run: late."""
    from . import runs
    from .models import Run, Schedule

    grace = float(getattr(settings, "DMAAS_RUN_LATE_SECONDS", 300))
    opened = 0
    for schedule in Schedule.objects.filter(enabled=True).exclude(cron=""):
        slot = runs.slot_before(schedule.cron, now)
        if (now - slot).total_seconds() < grace or slot < schedule.created_at:
            continue
        if not Run.objects.filter(schedule=schedule, slot=slot).exists():
            report(f"schedule:{schedule.name}", C.RUN_LATE, f"The run due at {slot:%Y-%m-%d %H:%M} UTC has not "
                   "started: is beat running?")
            opened += 1
    return opened


# --------------------------------------------------------------------------- people


def get_incident(user: Any, pk: Any) -> Incident:
    access.require(user, "incident.view")
    try:
        return Incident.objects.select_related("assignee", "acknowledged_by", "resolved_by", "run").get(pk=int(pk))
    except (Incident.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no incident {pk}.") from None


def acknowledge(user: Any, pk: Any, note: str = "", *, source: str = "page") -> Incident:
    access.require(user, "incident.manage")
    incident = get_incident(user, pk)
    if not Incident.objects.filter(pk=incident.pk, status=S.OPEN).update(
            status=S.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=user,
            acknowledge_note=str(note or "").strip()[:5000]):
        raise InvalidState(f"This incident is {incident.get_status_display().lower()} already.")
    audit.record(user, "incident.acknowledge", incident, source=source, details={"note": note})
    incident.refresh_from_db()
    transaction.on_commit(lambda: notify(incident.pk, "acknowledged"))
    return incident


def assign(user: Any, pk: Any, username: str | None, *, source: str = "page") -> Incident:
    access.require(user, "incident.manage")
    incident = get_incident(user, pk)
    assignee = None
    if username:
        assignee = get_user_model().objects.filter(username=username, is_active=True).first()
        if assignee is None:
            raise InvalidInput(f"There is no active user {username!r}.", field="assignee")
    if incident.status == S.RESOLVED:
        raise InvalidState("This incident is resolved.")
    Incident.objects.filter(pk=incident.pk).update(assignee=assignee)
    audit.record(user, "incident.assign", incident, source=source, details={"assignee": username or ""})
    incident.refresh_from_db()
    return incident


def resolve(user: Any, pk: Any, resolution: str, *, source: str = "page") -> Incident:
    access.require(user, "incident.manage")
    incident = get_incident(user, pk)
    text = str(resolution or "").strip()
    if not text:
        raise InvalidInput("Say what was done, so the next person knows.", field="resolution")
    if not Incident.objects.filter(pk=incident.pk, status__in=OPEN).update(
            status=S.RESOLVED, resolved_at=timezone.now(), resolved_by=user, resolution=text[:5000]):
        raise InvalidState("This incident is resolved already.")
    audit.record(user, "incident.resolve", incident, source=source, details={"resolution": text})
    incident.refresh_from_db()
    transaction.on_commit(lambda: notify(incident.pk, "resolved"))
    return incident


# --------------------------------------------------------------------------- notifications


def as_dict(incident: Incident) -> dict[str, Any]:
    return {"id": incident.pk, "subject": incident.subject, "cause": incident.cause, "status": incident.status,
            "error": incident.error, "owner": incident.owner, "failures": incident.failures,
            "assignee": incident.assignee.get_username() if incident.assignee else None,
            "opened_at": incident.opened_at.isoformat(), "last_failure_at": incident.last_failure_at.isoformat(),
            "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "resolution": incident.resolution, "run": incident.run_id}


def notify(pk: int, event: str, hooks: dict[str, list[str]] | None = None) -> None:
    """E-mail the platform admins, the assignee and the model's own addresses; POST the webhook and the
    model's own. Never raises."""
    incident = Incident.objects.filter(pk=pk).select_related("assignee").first()
    if incident is None:
        return
    subject = f"[dmaas] incident {incident.pk} {event}: {incident.subject} ({incident.get_cause_display().lower()})"
    body = f"{incident.get_cause_display()}: {incident.subject}\n\n{incident.error}\n\nStatus: {incident.status}"
    users = get_user_model().objects.filter(is_active=True, groups__name=access.Role.ADMIN.value).exclude(email="")
    recipients = sorted({u.email for u in users} | ({incident.assignee.email} if incident.assignee
                                                    and incident.assignee.email else set())
                        | set((hooks or {}).get("emails", [])))
    try:
        if recipients:
            send_mail(subject, body, None, recipients, fail_silently=False)
    except Exception:  # noqa: BLE001 - a mail server down must not fail the run
        log.warning("could not e-mail incident %s", pk, exc_info=True)
    urls = [u for u in [getattr(settings, "DMAAS_INCIDENT_WEBHOOK", ""), *(hooks or {}).get("webhooks", [])] if u]
    data = json.dumps({"event": event, "incident": as_dict(incident)}).encode()
    for url in dict.fromkeys(urls):
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - an admin- or model-set http(s) URL
                pass
        except Exception:  # noqa: BLE001
            log.warning("could not post incident %s to %s", pk, url, exc_info=True)
