"""Production runs: planned once, their nodes dispatched as Celery tasks as their parents finish.

A run (runner.models.Run) is planned at main's commit: the project compiled for the production schema,
the selection resolved, one NodeRun per node of dbt's build graph (seeds, models, tests; ephemeral
models are inlined). Nodes with no unfinished parent are dispatched (`runner.tasks.run_node`), each
task builds one model in the engine's gated mode (its tests that need only it run inside its
transaction: a model whose error tests fail keeps its old relation serving), records the outcome, and
dispatches the children that are now ready, or skips them when a parent failed (or goes on with one
itself); that part is runner.nodes. The last node to finish closes the run. So more workers mean more
nodes at once, within the warehouse's concurrency limit (runner.slots). Every step is a compare-and-set on a row, so a message delivered twice, two
workers finishing siblings at once, or two beats firing one slot never do a thing twice.

At most one run per target runs at a time (a conditional unique constraint on Run); a slot that
comes while one runs is skipped ("previous run still in progress") or queued, as its schedule says.
`reconcile()` (beat, every minute) re-queues nodes whose worker stopped beating, re-sends queued
nodes whose message was lost, closes runs whose nodes are all done, and opens "run late" incidents.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from models_service import access, audit
from models_service.errors import InvalidInput, InvalidState, NotFound
from models_service.git_store import MAIN_REF
from models_service.repo import get_store
from runner.engine.compiler import Manifest
from runner.engine.execution import execution_graph
from runner.engine.graph import SelectableNode, select

from . import incidents, jobs, slots
from . import warehouse as wh
from .models import NODE_BAD, NodeRun, NodeStatus, OnOverlap, Run, RunStatus, Schedule
from .nodes import (  # noqa: F401 - execute_node, worker_name, manifest_or_none, _TimeLimit: runner.tasks and tests
    TIMED_OUT,
    TRANSIENT_RETRIES,
    _send,
    _skip_gated,
    _start_next_queued,
    _TimeLimit,
    advance,
    dispatch,
    execute_node,
    finish_if_done,
    manifest_for,
    manifest_or_none,
    worker_name,
)

log = logging.getLogger(__name__)
N, R = NodeStatus, RunStatus
SKIPPED_BUSY = "skipped: the previous run of this target is still in progress"


def setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------- schedules


def validate_cron(cron: str) -> str:
    from croniter import croniter

    cron = " ".join(str(cron or "").split())
    if cron and (len(cron.split()) != 5 or not croniter.is_valid(cron)):
        raise InvalidInput(f"{cron!r} is not a cron expression of five fields (minute hour day month weekday), "
                           "e.g. '0 * * * *' for every hour.", field="cron")
    return cron


def _zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.TIME_ZONE)


def slot_before(cron: str, now: dt.datetime) -> dt.datetime:
    """The latest cron slot at or before `now` (the slot a beat firing now is for)."""
    from croniter import croniter

    local = now.astimezone(_zone())
    it = croniter(cron, local + dt.timedelta(seconds=1))
    return it.get_prev(dt.datetime).astimezone(dt.UTC)


def next_slots(cron: str, now: dt.datetime, count: int = 1) -> list[dt.datetime]:
    from croniter import croniter

    it = croniter(cron, now.astimezone(_zone()))
    return [it.get_next(dt.datetime).astimezone(dt.UTC) for _ in range(count)]


def sync_beat(schedule: Schedule) -> None:
    """Keep django-celery-beat's task for the schedule in step (beat reads its tables)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = f"dmaas-schedule-{schedule.pk}"
    if not schedule.cron:
        PeriodicTask.objects.filter(name=name).delete()
        return
    minute, hour, day, month, weekday = schedule.cron.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_month=day,
                                                       month_of_year=month, day_of_week=weekday,
                                                       timezone=settings.TIME_ZONE)
    PeriodicTask.objects.update_or_create(name=name, defaults={
        "task": "runner.tasks.fire_schedule", "crontab": crontab, "interval": None, "args": f"[{schedule.pk}]",
        "enabled": schedule.enabled, "description": f"dmaas: {schedule.name}"})


def ensure_default_schedule(**kwargs: Any) -> Schedule | None:
    """The hourly production run of everything on main, created once (post_migrate)."""
    if Schedule.objects.exists():
        return None
    schedule = Schedule.objects.create(name="Hourly production run", cron="0 * * * *")
    sync_beat(schedule)
    return schedule


def save_schedule(user: Any, schedule: Schedule | None, *, source: str = "page", **fields: Any) -> Schedule:
    access.require(user, "schedule.manage")
    schedule = schedule or Schedule()
    if "cron" in fields:
        fields["cron"] = validate_cron(fields["cron"])
    for key in ("select", "exclude"):
        if key in fields:
            fields[key] = " ".join(str(fields[key] or "").split())
            if fields[key]:
                _check_selector(fields[key], key)
    for key, value in fields.items():
        setattr(schedule, key, value)
    if not schedule.name or not str(schedule.name).strip():
        raise InvalidInput("A schedule needs a name.", field="name")
    if not schedule.cron and schedule.after_id is None:
        raise InvalidInput("Give a cron, or a schedule to run after (or both).", field="cron")
    if schedule.after_id is not None and schedule.pk is not None and schedule.after_id == schedule.pk:
        raise InvalidInput("A schedule cannot run after itself.", field="after")
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError:
        raise InvalidInput(f"There is a schedule called {schedule.name!r} already.", field="name") from None
    sync_beat(schedule)
    audit.record(user, "schedule.save", schedule, source=source, details={k: str(v) for k, v in fields.items()})
    return schedule


def _check_selector(text: str, field: str) -> None:
    from runner.engine.graph import SELECTOR_RE

    for term in text.replace(",", " ").split():
        if not SELECTOR_RE.match(term):
            raise InvalidInput(f"Cannot read the selector {term!r}: use names, +name, name+, tag:x or path:dir.",
                               field=field)


def fire_schedule(schedule_id: int, slot: dt.datetime | None = None, *, trigger: str = "schedule") -> Run | None:
    """Beat's entry point: the run of the schedule's current slot, created once whoever fires it."""
    schedule = Schedule.objects.filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    now = timezone.now()
    if slot is None:
        slot = slot_before(schedule.cron, now) if schedule.cron else now.replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            run = Run.objects.create(schedule=schedule, slot=slot, trigger=trigger, target=wh.production_schema(),
                                     select=schedule.select, exclude=schedule.exclude)
    except IntegrityError:
        return None  # this slot has its run already (a second beat, a redelivered message)
    return start_run(run, on_overlap=schedule.on_overlap)


def request_run(user: Any, *, select: str = "", exclude: str = "", schedule: Schedule | None = None,
                source: str = "page") -> Run:
    """Run now, by hand (platform admins): a schedule's selection, or the one given."""
    access.require(user, "run.trigger")
    if schedule is not None:
        select, exclude = schedule.select, schedule.exclude
    for key, text in (("select", select), ("exclude", exclude)):
        if text:
            _check_selector(text, key)
    run = Run.objects.create(schedule=schedule, slot=None, trigger="manual", requested_by=user,
                             target=wh.production_schema(), select=select, exclude=exclude)
    audit.record(user, "run.request", run, source=source, details={"select": select, "exclude": exclude})
    return start_run(run, on_overlap=OnOverlap.QUEUE)


# --------------------------------------------------------------------------- planning


def _selected(manifest: Manifest, select_text: str, exclude_text: str) -> set[str]:
    nodes = {uid: SelectableNode(uid, n.name, n.resource_type, n.path, n.fqn, n.tags, n.sources,
                                 [n.test.attached_uid] if n.test and n.test.attached_uid else [])
             for uid, n in manifest.nodes.items()}
    chosen = select(manifest.graph, nodes, select_text.split() if select_text else None,
                    exclude_text.split() if exclude_text else None)
    if select_text:  # dbt's eager indirect selection: tests of what was chosen come along
        chosen |= {u for u, n in manifest.nodes.items() if n.resource_type == "test"
                   and any(d in chosen for d in n.depends_on)}
    return chosen


def _gates(manifest: Manifest, parents: dict[str, set[str]]) -> dict[str, str]:
    """test -> the model it runs inside of (the engine's rule: its other parents are that model's
    ancestors), for the tests of this run."""
    gated: dict[str, str] = {}
    ancestors: dict[str, set[str]] = {}
    for uid, ps in parents.items():
        node = manifest.nodes[uid]
        if node.resource_type != "test":
            continue
        for model in [p for p in node.depends_on if p in parents and manifest.nodes[p].resource_type == "model"]:
            others = [p for p in ps if p != model]
            if others and model not in ancestors:
                ancestors[model] = _ancestors(parents, model)
            if all(o in ancestors.get(model, set()) for o in others):
                gated[uid] = model
                break
    return gated


def _ancestors(parents: dict[str, set[str]], uid: str) -> set[str]:
    seen, stack = set(), list(parents[uid])
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(parents.get(p, ()))
    return seen


def start_run(run: Run, *, on_overlap: str = OnOverlap.SKIP) -> Run:
    """Plan the run and dispatch its first nodes, unless its target is busy (then skip or queue)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            updated = Run.objects.filter(pk=run.pk, status=R.QUEUED).update(status=R.RUNNING, started_at=now)
    except IntegrityError:  # another run of this target is running
        if on_overlap == OnOverlap.QUEUE:
            Run.objects.filter(pk=run.pk).update(message="queued behind the run in progress")
        else:
            Run.objects.filter(pk=run.pk, status=R.QUEUED).update(status=R.SKIPPED, message=SKIPPED_BUSY,
                                                                  finished_at=now)
            run.refresh_from_db()
            if run.schedule_id:
                incidents.report_run(run, "run_skipped", SKIPPED_BUSY)
        run.refresh_from_db()
        return run
    if not updated:
        run.refresh_from_db()
        return run
    try:
        _plan(run)
    except Exception as err:  # noqa: BLE001 - a project that cannot compile fails the run, clearly
        log.exception("planning run %s failed", run.pk)
        message = getattr(err, "message", None) or str(err)
        Run.objects.filter(pk=run.pk).update(status=R.FAILED, message=f"The run could not be planned: {message}",
                                             finished_at=timezone.now())
        run.refresh_from_db()
        if run.schedule_id:
            incidents.report_run(run, "run_late", run.message)
        _start_next_queued(run.target)
        return run
    run.refresh_from_db()
    dispatch(run, [n for n in NodeRun.objects.filter(run=run, status=N.PENDING).defer("compiled_sql")
                   if not n.parents and not n.gated_by])
    finish_if_done(run.pk)
    run.refresh_from_db()
    return run


def _plan(run: Run) -> None:
    sha = get_store().tip(MAIN_REF)
    if not sha:
        raise InvalidState("The repository has no main branch yet.")
    manifest = manifest_for(sha, run.target)
    chosen = _selected(manifest, run.select, run.exclude)
    graph = execution_graph(manifest, chosen, "build")
    parents = {u: set(ps) for u, ps in graph.parents.items()}
    gated = _gates(manifest, parents)
    rows = []
    for uid in graph.topological():
        node = manifest.nodes[uid]
        rows.append(NodeRun(run=run, unique_id=uid, name=node.name, resource_type=node.resource_type,
                            parents=sorted(parents[uid]), gated_by=gated.get(uid, ""),
                            compiled_sql=manifest.compiled.get(uid, "")[:200_000]))
    NodeRun.objects.bulk_create(rows, batch_size=500)
    Run.objects.filter(pk=run.pk).update(sha=sha, nodes_total=len(rows))


# --------------------------------------------------------------------------- people's actions


def get_run(user: Any, run_id: Any) -> Run:
    access.require(user, "run.view")
    try:
        return Run.objects.select_related("schedule", "requested_by").get(pk=int(run_id))
    except (Run.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no run {run_id}.") from None


def retry_run(user: Any, run: Run | int, *, source: str = "page") -> Run:
    """Re-run a finished run's failed nodes and the nodes they skipped (a failed test rebuilds its model)."""
    access.require(user, "run.trigger")
    run = get_run(user, run.pk if isinstance(run, Run) else run)
    if not run.finished:
        raise InvalidState("This run is still going; retry it once it has finished.")
    bad = NodeRun.objects.filter(run=run, status__in=NODE_BAD)
    names = set()
    for node in bad:
        if node.resource_type == "test":  # a failed test rebuilds the model it tests
            names |= {p.rsplit(".", 1)[-1] for p in node.parents if p.startswith(("model.", "seed."))}
        else:
            names.add(node.name)
    if not names:
        raise InvalidState("Nothing failed in this run: there is nothing to retry.")
    retry = Run.objects.create(schedule=run.schedule, slot=None, trigger="retry", retry_of=run, requested_by=user,
                               target=run.target, select=" ".join(sorted(names)))
    audit.record(user, "run.retry", retry, source=source, details={"retry_of": run.pk, "models": sorted(names)})
    return start_run(retry, on_overlap=OnOverlap.QUEUE)


def cancel_run(user: Any, run: Run | int, *, source: str = "page") -> Run:
    """Stop dispatching: nodes not started yet are skipped; running ones finish (their transaction
    decides); the run ends cancelled."""
    access.require(user, "run.trigger")
    run = get_run(user, run.pk if isinstance(run, Run) else run)
    if run.finished:
        raise InvalidState(f"This run has {run.get_status_display().lower()} already.")
    now = timezone.now()
    Run.objects.filter(pk=run.pk, status__in=(R.QUEUED, R.RUNNING)).update(
        status=R.CANCELLED, finished_at=now, message=f"cancelled by {user.get_username()}")
    NodeRun.objects.filter(run=run, status__in=(N.PENDING, N.QUEUED)).update(
        status=N.SKIPPED, message="the run was cancelled", finished_at=now)
    audit.record(user, "run.cancel", run, source=source)
    _start_next_queued(run.target)
    run.refresh_from_db()
    return run


# --------------------------------------------------------------------------- the reconciler


def reconcile(now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic: nodes of dead workers, lost messages, runs left open, late scheduled runs, ended runs
    whose measurements were not judged."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=float(setting("DMAAS_NODE_STALE_SECONDS", 60)))
    out = {"requeued": 0, "failed": 0, "resent": 0, "closed": 0, "late": 0, "judge": 0}
    for node in NodeRun.objects.filter(status=N.RUNNING, heartbeat_at__lt=stale).select_related("run"):
        if node.attempts < TRANSIENT_RETRIES:
            if NodeRun.objects.filter(pk=node.pk, status=N.RUNNING, heartbeat_at__lt=stale).update(
                    status=N.QUEUED, queued_at=now, message=f"the worker {node.worker} stopped; running it again"):
                slots.release(node)
                transaction.on_commit(lambda pk=node.pk: _send([pk]))
                out["requeued"] += 1
        elif NodeRun.objects.filter(pk=node.pk, status=N.RUNNING).update(
                status=N.ERROR, finished_at=now, message=f"its worker stopped {node.attempts} times; giving up"):
            slots.release(node)
            _skip_gated(node, node.unique_id)
            advance(node.run_id, [node.unique_id])
            out["failed"] += 1
    lost = now - dt.timedelta(seconds=float(setting("DMAAS_NODE_LOST_SECONDS", 600)))
    for node in NodeRun.objects.filter(status=N.QUEUED, queued_at__lt=lost):
        NodeRun.objects.filter(pk=node.pk).update(queued_at=now)
        transaction.on_commit(lambda pk=node.pk: _send([pk]))
        out["resent"] += 1
    for run in Run.objects.filter(status=R.RUNNING):
        if finish_if_done(run.pk) is not None:
            out["closed"] += 1
        elif not run.sha and run.started_at and run.started_at < lost:
            # its planner died before the run had nodes: fail it, and start what waits behind it
            if Run.objects.filter(pk=run.pk, status=R.RUNNING, sha="").update(
                    status=R.FAILED, finished_at=now, message="planning stopped (the worker died); run it again"):
                _start_next_queued(run.target)
                out["failed"] += 1
    out["late"] = incidents.late_runs(now)
    from .observe.record import unjudged_runs
    from .tasks import judge_run

    for run_id in unjudged_runs(now - dt.timedelta(seconds=float(setting("DMAAS_NODE_LOST_SECONDS", 600)))):
        jobs.send_later(judge_run, run_id)  # a cancelled run, or its judging task died with a worker
        out["judge"] += 1
    out["resent"] += jobs.resend_unsent()  # CI builds, deploys and tests whose send failed (broker down)
    return out


def next_runs(now: dt.datetime | None = None, per_schedule: int = 1) -> list[dict[str, Any]]:
    """What runs next: each enabled cron schedule's next slots, its models and their predicted seconds
    (the median of their last runs)."""
    now = now or timezone.now()
    sha = get_store().tip(MAIN_REF)
    out = []
    for schedule in Schedule.objects.filter(enabled=True).order_by("name"):
        models: list[str] = []
        predicted = None
        if sha:
            try:
                manifest = manifest_for(sha, wh.production_schema())
                chosen = _selected(manifest, schedule.select, schedule.exclude)
                models = sorted(manifest.nodes[u].name for u in chosen if manifest.nodes[u].resource_type == "model"
                                and manifest.nodes[u].materialized != "ephemeral")
            except Exception:  # noqa: BLE001 - a broken main shows as no models, the run will say why
                models = []
        if models:
            predicted = round(sum(_recent_seconds(models).values()), 1)
        slots_at = next_slots(schedule.cron, now, per_schedule) if schedule.cron else []
        out.append({"schedule": schedule, "next": slots_at, "after": schedule.after, "models": models,
                    "predicted_seconds": predicted})
    out.sort(key=lambda r: (r["next"][0] if r["next"] else dt.datetime.max.replace(tzinfo=dt.UTC)))
    return out


def _recent_seconds(names: list[str], runs_back: int = 5) -> dict[str, float]:
    """The median build seconds of each model over its last successful runs, in one query."""
    from statistics import median

    recent = Run.objects.filter(status__in=(R.SUCCESS, R.FAILED)).order_by("-id").values_list("pk", flat=True)
    ids = list(recent[:runs_back * 4])
    seen: dict[str, list[float]] = {}
    rows = NodeRun.objects.filter(run_id__in=ids, name__in=names, status=N.SUCCESS, seconds__isnull=False)
    for name, seconds in rows.order_by("-run_id").values_list("name", "seconds"):
        if len(seen.setdefault(name, [])) < runs_back:
            seen[name].append(seconds)
    return {name: median(values) for name, values in seen.items()}


def model_runs(name: str, limit: int = 10) -> dict[str, Any]:
    """Past, now and next of one model: its last node runs, a running one, the next slot that builds it."""
    past = list(NodeRun.objects.filter(name=name, resource_type__in=("model", "seed")).exclude(
        status__in=(N.PENDING, N.QUEUED, N.RUNNING)).select_related("run").order_by("-id")[:limit])
    running = NodeRun.objects.filter(name=name, status__in=(N.QUEUED, N.RUNNING)).select_related("run").first()
    upcoming = next((r for r in next_runs() if name in r["models"] and r["next"]), None)
    from .models import Incident, IncidentStatus

    incident = Incident.objects.filter(subject=name).exclude(status=IncidentStatus.RESOLVED).first()
    return {"past": past, "running": running, "next": upcoming, "incident": incident}

