"""A run's nodes, in the workers: its plan kept in memory, dispatching the nodes whose parents are done,
and building one node (with the tests run inside its transaction) in a Celery task (runner.runs
plans and closes runs; this module moves them along).

Every step is a compare-and-set on the node's own row (status, attempts), so a message delivered
twice, two workers finishing siblings at once, a worker going on with the next node itself
(continuation: a child it made ready, or a node still queued) and the reconciler never do one thing
twice. A worker's first node costs about ten portal queries, a node it goes on with three (and one per
test run inside it); tests/runner/test_runs_continuation.py keeps those budgets.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from models_service.repo import get_store
from runner.engine.compiler import Compiler, Manifest, Target
from runner.engine.execution import Executor, NodeResult, RunOptions
from runner.engine.project import MappingSource, load_project

from . import incidents, jobs, preview, slots
from . import warehouse as wh
from .models import NODE_BAD, NODE_DONE, NODE_FAILED, NodeRun, NodeStatus, Run, RunStatus, Schedule

log = logging.getLogger(__name__)
N, R = NodeStatus, RunStatus
TRANSIENT = re.compile(r"(connection|server closed|terminating connection|could not serialize|deadlock|"
                       r"lock timeout|timeout expired|Conflict on|database is locked|Could not set lock)", re.I)
TRANSIENT_RETRIES = 3


def setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------- main's project, compiled


_MANIFESTS: OrderedDict[tuple[str, str, str], Manifest] = OrderedDict()
_MANIFEST_LOCK = threading.Lock()


def manifest_for(sha: str, target: str) -> Manifest:
    """main's project at `sha`, compiled for `target`; cached per process (a run plans once, its nodes
    run in many tasks)."""
    warehouse = wh.get_warehouse()
    key = (sha, target, warehouse.type)
    with _MANIFEST_LOCK:
        if key in _MANIFESTS:
            _MANIFESTS.move_to_end(key)
            return _MANIFESTS[key]
    files = preview.project_files(get_store(), sha)
    manifest = Compiler(load_project(MappingSource(dict(files))), Target(name="prod", schema=target,
                                                                          type=warehouse.type)).compile()
    with _MANIFEST_LOCK:
        _MANIFESTS[key] = manifest
        while len(_MANIFESTS) > 8:
            _MANIFESTS.popitem(last=False)
    return manifest


# --------------------------------------------------------------------------- a run's plan, in memory


@dataclass(frozen=True)
class Step:
    """One node of a planned run, as its rows say once planned (they never change after)."""

    pk: int
    unique_id: str
    name: str
    resource_type: str
    parents: tuple[str, ...]
    gated: tuple[str, ...] = ()  # the tests run inside this model's transaction
    children: tuple[str, ...] = ()  # the nodes dispatched after it (not gated ones)


class Plan:
    """A run's graph, read once per process (one query) instead of searching the rows for the
    children of each finished node: what a node runs with it and what may run after it."""

    def __init__(self, rows: list[tuple[int, str, str, str, list[str], str]]):
        gated: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for _, uid, _, _, parents, gated_by in rows:
            if gated_by:
                gated.setdefault(gated_by, []).append(uid)
                continue
            for parent in parents:
                children.setdefault(parent, []).append(uid)
        self.steps = {uid: Step(pk, uid, name, kind, tuple(parents), tuple(gated.get(uid, ())),
                                tuple(children.get(uid, ())))
                      for pk, uid, name, kind, parents, _ in rows}
        self.by_pk = {step.pk: step for step in self.steps.values()}

    def node(self, run: Run, uid: str, **fields: Any) -> NodeRun:
        """The NodeRun of `uid` without reading its row (`fields`: what the caller knows of its state)."""
        step = self.steps[uid]
        return NodeRun(pk=step.pk, run=run, unique_id=uid, name=step.name, resource_type=step.resource_type,
                       parents=list(step.parents), **fields)


_PLANS: OrderedDict[tuple[int, Any], Plan] = OrderedDict()


def plan_of(run: Run) -> Plan:
    """The run's plan, read once per process (keyed by the run and its creation, as a test database
    reuses ids)."""
    key = (run.pk, run.created_at)
    with _MANIFEST_LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    plan = Plan(list(NodeRun.objects.filter(run_id=run.pk).order_by("id").values_list(
        "pk", "unique_id", "name", "resource_type", "parents", "gated_by")))
    with _MANIFEST_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > 8:
            _PLANS.popitem(last=False)
    return plan


# --------------------------------------------------------------------------- dispatching


def dispatch(run: Run, nodes: list[NodeRun]) -> list[int]:
    """Queue these pending nodes (compare-and-set: a node is queued once) and send their tasks, in
    one update and, after the commit, one connection to the broker."""
    if not nodes:
        return []
    now = timezone.now()
    ids = [n.pk for n in nodes]
    moved = NodeRun.objects.filter(pk__in=ids, status=N.PENDING).update(status=N.QUEUED, queued_at=now)
    if moved < len(ids):  # some were queued (or skipped) by another worker a moment ago: only ours
        ids = list(NodeRun.objects.filter(pk__in=ids, status=N.QUEUED, queued_at=now).order_by()
                   .values_list("pk", flat=True)) if moved else []
    if ids:
        transaction.on_commit(lambda: _send(ids))
    return ids


def _send(node_ids: list[int], countdown: float | None = None) -> None:
    from .tasks import run_node

    if len(node_ids) == 1:
        run_node.apply_async((node_ids[0],), countdown=countdown)
        return
    with run_node.app.producer_or_acquire() as producer:  # one connection for the lot
        for pk in node_ids:
            run_node.apply_async((pk,), countdown=countdown, producer=producer)


Keep = Callable[[Step], bool]  # may this worker run that ready node itself, now (runner.tasks' budget)?


def advance(run: Run | int, finished: list[str], *, known: dict[str, str] | None = None,
            keep: tuple[str, Keep] | None = None) -> NodeRun | None:
    """After nodes finished: dispatch the children now ready; skip those below a failure (and theirs).
    `known`: uid -> status of nodes whose status the caller knows (no need to read them). `keep`
    (worker, budget): claim one ready child for this worker to run next instead of sending it
    (continuation); it is returned, running."""
    run = run if isinstance(run, Run) else Run.objects.get(pk=run)
    plan = plan_of(run)
    known = dict(known or {})
    frontier = list(finished)
    ready: list[Step] = []
    while frontier:
        candidates = list(dict.fromkeys(c for f in frontier for c in plan.steps[f].children))
        frontier = []
        if not candidates:
            break
        wanted = {p for c in candidates for p in plan.steps[c].parents} | set(candidates)
        if not all(p in known for c in candidates for p in plan.steps[c].parents):
            pks = {plan.steps[u].pk: u for u in wanted}
            known.update((pks[pk], status) for pk, status in NodeRun.objects.filter(pk__in=list(pks)).order_by()
                         .values_list("pk", "status"))
        for uid in candidates:
            if known.get(uid, N.PENDING) != N.PENDING:
                continue
            child = plan.steps[uid]
            states = [known.get(p) for p in child.parents]
            if not all(s in NODE_DONE for s in states):
                continue
            bad = [p for p in child.parents if known.get(p) in NODE_BAD]
            if bad and not _continues(run, bad):
                cause = bad[0]
                if NodeRun.objects.filter(pk=child.pk, status=N.PENDING).update(
                        status=N.SKIPPED, cause=cause, finished_at=timezone.now(),
                        message=f"skipped because {cause.rsplit('.', 1)[-1]} failed"):
                    _skip_gated(plan.node(run, uid), cause)
                    known[uid] = N.SKIPPED
                    frontier.append(uid)
            else:
                ready.append(child)
    kept = None
    if keep is not None:
        worker, budget = keep
        for child in ready:
            if budget(child):
                kept = _claim_pending(run, plan, child, worker)
            if kept is not None:
                ready.remove(child)
                break
    sent = dispatch(run, [plan.node(run, c.unique_id) for c in ready]) if ready else []
    if kept is None and not sent:
        finish_if_done(run.pk)  # nothing of this run goes on here: it may be the end
    return kept


def _claim_pending(run: Run, plan: Plan, child: Step, worker: str) -> NodeRun | None:
    """Take a ready node straight from pending to running for this worker (its first attempt), while
    the run still runs (a cancelled run's pending nodes are skipped, so this fails then)."""
    now = timezone.now()
    if not NodeRun.objects.filter(pk=child.pk, status=N.PENDING, run_id__in=_running(run)).update(
            status=N.RUNNING, worker=worker, queued_at=now, started_at=now, heartbeat_at=now, message="",
            attempts=F("attempts") + 1):
        return None
    return plan.node(run, child.unique_id, status=N.RUNNING, worker=worker, queued_at=now, started_at=now,
                     heartbeat_at=now, attempts=1)


def _running(run: Run) -> Any:
    """The run, if it still runs, as a subquery for a node's compare-and-set. Not `run__status=`: Django
    turns a filter through a relation into `id IN (select ...)`, evaluated on the statement's snapshot,
    and PostgreSQL does not evaluate that again when a concurrent update of the row commits first, so
    two workers could both take one node. Kept to the row's own columns, the compare-and-set holds."""
    return Run.objects.filter(pk=run.pk, status=R.RUNNING).values("pk")


def _take_queued(run: Run, worker: str, budget: Keep) -> NodeRun | None:
    """No child of its own is ready: take a node of the same run that waits in the broker's queue
    (its message, when a worker gets it, finds it taken). Only first attempts: a retry waits out its
    backoff. The run must still run (a cancelled run's queued nodes are skipped anyway)."""
    plan = plan_of(run)
    waiting = NodeRun.objects.filter(run_id=run.pk, status=N.QUEUED, attempts=0).order_by("id")
    for pk in waiting.values_list("pk", flat=True)[:5]:
        step = plan.by_pk.get(pk)
        if step is None or not budget(step):
            continue
        now = timezone.now()
        if NodeRun.objects.filter(pk=pk, status=N.QUEUED, attempts=0, run_id__in=_running(run)).update(
                status=N.RUNNING, worker=worker, started_at=now, heartbeat_at=now, message="", attempts=1):
            return plan.node(run, step.unique_id, status=N.RUNNING, worker=worker, started_at=now,
                             heartbeat_at=now, attempts=1)
    return None


def _meta(run: Run, uid: str) -> dict[str, Any]:
    """The node's `meta` (on_failure: skip | continue | retry; retries: N), from the model form or yml."""
    try:
        node = manifest_for(run.sha, run.target).nodes.get(uid)
    except Exception:  # noqa: BLE001 - no meta: the defaults
        return {}
    meta = (node.config.get("meta") if node is not None else None) or {}
    return meta if isinstance(meta, dict) else {}


def _continues(run: Run, bad: list[str]) -> bool:
    """Every failed parent says `on_failure: continue`: its children still run (on the old data)."""
    return all(_meta(run, p).get("on_failure") == "continue" for p in bad)


def _skip_gated(model: NodeRun, cause: str) -> None:
    NodeRun.objects.filter(run_id=model.run_id, gated_by=model.unique_id, status=N.PENDING).update(
        status=N.SKIPPED, cause=cause, finished_at=timezone.now(),
        message=f"skipped because {cause.rsplit('.', 1)[-1]} failed")


def finish_if_done(run_id: int) -> Run | None:
    """Close the run once every node is done; start what waits for its target; trigger followers."""
    # the common answer first (nodes still to go: one query per finished node, not two)
    if NodeRun.objects.filter(run_id=run_id).exclude(status__in=NODE_DONE).exists():
        return None
    if not Run.objects.filter(pk=run_id, status=R.RUNNING).exclude(sha="").exists():
        return None  # not running, or still being planned (_plan sets sha once its nodes exist)
    counts = NodeRun.objects.filter(run_id=run_id).order_by().aggregate(
        total=Count("id"), bad=Count("id", filter=Q(status__in=NODE_FAILED)),
        skipped=Count("id", filter=Q(status=N.SKIPPED)))
    total, bad, skipped = counts["total"], counts["bad"], counts["skipped"]
    status = R.FAILED if bad or skipped else R.SUCCESS
    message = (f"{total - bad - skipped} of {total} nodes passed" + (f", {bad} failed" if bad else "")
               + (f", {skipped} skipped" if skipped else ""))
    if not Run.objects.filter(pk=run_id, status=R.RUNNING).update(status=status, finished_at=timezone.now(),
                                                                  message=message):
        return None
    run = Run.objects.select_related("schedule").get(pk=run_id)
    _start_next_queued(run.target)
    if getattr(settings, "DMAAS_MEASURE_BUILDS", True):
        from .tasks import judge_run  # its measurements, judged now the run has built all it will

        jobs.send_later(judge_run, run_id)
    if status == R.SUCCESS and run.schedule_id:
        for follower in Schedule.objects.filter(after_id=run.schedule_id, enabled=True):
            transaction.on_commit(lambda pk=follower.pk, slot=run.slot or run.created_at: _fire_after(pk, slot))
    return run


def _fire_after(schedule_id: int, slot: dt.datetime) -> None:
    from .tasks import fire_schedule

    fire_schedule.delay(schedule_id, slot.isoformat(), "after")


def _start_next_queued(target: str) -> None:
    """The run waiting for this target starts, through the outbox: a broker down as the last node
    finishes must not leave it queued for ever."""
    from .tasks import start_run as start_task

    waiting = Run.objects.filter(target=target, status=R.QUEUED).order_by("created_at", "id").first()
    if waiting is not None:
        jobs.send_later(start_task, waiting.pk)


# --------------------------------------------------------------------------- one node, in a worker


def _claim(node_id: int, worker: str) -> NodeRun | None:
    now = timezone.now()
    updated = NodeRun.objects.filter(pk=node_id, status=N.QUEUED).update(
        status=N.RUNNING, worker=worker, started_at=now, heartbeat_at=now, message="", attempts=F("attempts") + 1)
    if not updated:
        return None
    return NodeRun.objects.select_related("run").defer("compiled_sql", "run__message").get(pk=node_id)


TIMED_OUT = "Timed out"


class _TimeLimit:
    """A model's time limit (meta `time_limit` in seconds, else DMAAS_MODEL_TIME_LIMIT, 15 min): when it
    passes, the adapter's running statement is cancelled (DuckDB interrupt, PostgreSQL cancel). The
    build fails inside its transaction, so its temporary relation goes with the rollback and the old
    relation keeps serving. Celery's soft limit, a little later, is only the backstop."""

    def __init__(self, seconds: float):
        self.seconds, self.fired = seconds, False
        self.adapter: Any = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def on(self, adapter: Any) -> _TimeLimit:
        self.adapter = adapter
        return self

    @staticmethod
    def seconds_for(meta: dict[str, Any]) -> float:
        default = float(setting("DMAAS_MODEL_TIME_LIMIT", 900))
        try:
            value = float(meta.get("time_limit", default))
        except (TypeError, ValueError):
            return default
        return value if 0 < value <= default else default  # meta may shorten it, not pass Celery's limit

    def _fire(self) -> None:
        self.fired = True
        log.warning("time limit of %.0f s reached: cancelling the query", self.seconds)
        self.adapter.interrupt()

    def __enter__(self) -> _TimeLimit:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def worker_name(hostname: str | None = None) -> str:
    """Which worker runs a node: the Celery worker's --hostname (or the machine's), process and thread."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def execute_node(node_id: int, worker: str | None = None, *, chain_seconds: float = 0.0) -> str:
    """Run one queued node to its end (a task body); returns its status. Never raises for the node.

    Continuation: while the task has been running less than `chain_seconds` minus the next node's
    time limit (runner.tasks passes Celery's soft limit), a child this node made ready is claimed and
    run here next, in the same task, holding on to the warehouse slot (and, on DuckDB, the open file:
    Warehouse.hold), instead of going through the broker to whichever worker; the other ready children
    are sent. With no child ready, a node of the run still waiting in the queue is taken instead."""
    began, worker = time.monotonic(), worker or worker_name()
    node = _claim(node_id, worker)
    if node is None:
        return NodeRun.objects.filter(pk=node_id).values_list("status", flat=True).first() or "missing"
    run = node.run
    if run.status != R.RUNNING:
        NodeRun.objects.filter(pk=node.pk).update(status=N.SKIPPED, message="the run was cancelled",
                                                  finished_at=timezone.now())
        _skip_gated(node, node.unique_id)
        advance(run, [node.unique_id])
        return N.SKIPPED

    def budget(step: Step) -> bool:
        limit = _TimeLimit.seconds_for(_meta(run, step.unique_id))
        return time.monotonic() - began + limit < chain_seconds

    keep = (worker, budget) if chain_seconds > 0 else None
    # the heartbeat covers the wait for a warehouse slot too: a waiting node is alive, not dead
    # one beating thread per task: its `pk` moves on when the task goes on with the next node
    with jobs.Heartbeat(NodeRun, node.pk, float(setting("DMAAS_NODE_HEARTBEAT_SECONDS", 10))) as beat, \
            wh.get_warehouse().hold() as hold:
        held: Any = None
        try:
            while True:
                beat.pk = node.pk
                status, held, following = _run_one(run, node, held, keep, hold)
                hold.between_nodes()
                if following is None and keep is not None and status in NODE_DONE:
                    following = _take_queued(run, worker, budget)
                if following is None:
                    return status
                node = following
        finally:
            if held is not None:
                slots.give_back(held)


def _run_one(run: Run, node: NodeRun, held: Any, keep: tuple[str, Keep] | None,
             hold: Any = None) -> tuple[str, Any, NodeRun | None]:
    """Build one claimed node (with its gated tests), record it, advance the run: (its status, the
    warehouse slot still held, the child this worker goes on with)."""
    plan = plan_of(run)
    step = plan.steps[node.unique_id]
    by_uid = {step.unique_id: step.pk, **{u: plan.steps[u].pk for u in step.gated}}
    results: list[NodeResult] = []
    limit = _TimeLimit(_TimeLimit.seconds_for(_meta(run, node.unique_id)))
    try:
        manifest = manifest_for(run.sha, run.target)
        if held is None or not slots.hand_over(held, node):
            if held is not None:
                slots.give_back(held)
            held = slots.claim(run.target, node)
            node.started_at = timezone.now()  # in the warehouse from now: not while it waited for a slot
            NodeRun.objects.filter(pk=node.pk).update(started_at=node.started_at)
        with wh.get_warehouse().build(linger=True) as adapter, limit.on(adapter):
            if hold is not None:
                hold.join()
            options = RunOptions(command="build", threads=1, gate=True, on_result=results.append)
            Executor(manifest, adapter, options).run(set(by_uid))
    except Exception as err:  # noqa: BLE001 - the platform failed: recorded on the node
        log.exception("node %s of run %s failed to run", node.name, run.pk)
        results = [NodeResult(unique_id=node.unique_id, resource_type=node.resource_type, name=node.name,
                              status="error", message=f"The node could not run: {err}")]
    if limit.fired:  # its own status (RELIABILITY F7): never retried, an incident of its own cause
        for result in results:
            if result.unique_id in by_uid and result.status == "error":
                result.status = N.TIMEOUT.value
                result.message = (f"{TIMED_OUT} after {limit.seconds:g} s, its time limit: the query was "
                                  "cancelled and the old relation keeps serving.")
    mine = next((r for r in results if r.unique_id == node.unique_id), None)
    if mine is not None and mine.status == "error" and node.attempts < _retries(run, node, mine):
        backoff = min(2 ** node.attempts, 60)
        NodeRun.objects.filter(pk=node.pk, status=N.RUNNING).update(
            status=N.QUEUED, queued_at=timezone.now(),
            message=f"attempt {node.attempts} failed, trying again in {backoff} s: {mine.message}")
        transaction.on_commit(lambda: _send([node.pk], countdown=backoff))
        return N.QUEUED, held, None
    now = timezone.now()
    for result in results:
        pk = by_uid.get(result.unique_id)
        if pk is None:
            continue
        fields = {"status": result.status, "seconds": result.seconds, "rows": result.rows,
                  "failures": result.failures, "message": result.message or "", "finished_at": now,
                  "error_line": _line_of(result.message, result.resource_type), "cause": result.cause or ""}
        if pk != node.pk:
            fields.update(started_at=node.started_at, attempts=node.attempts, worker=node.worker)
            NodeRun.objects.filter(pk=pk).update(**fields)
        elif not NodeRun.objects.filter(pk=pk, status=N.RUNNING, attempts=node.attempts).update(**fields):
            # this attempt was given up on (the reconciler re-queued the node): the newer one decides
            status = NodeRun.objects.filter(pk=node.pk).values_list("status", flat=True).first() or N.ERROR
            return status, held, None
    if mine is None:
        NodeRun.objects.filter(pk=node.pk).update(status=N.ERROR, finished_at=now, message="no result")
    incidents.after_node(run, [r for r in results if r.unique_id in by_uid], manifest_or_none(run))
    done = {r.unique_id: r.status for r in results if r.unique_id in by_uid}
    done.setdefault(node.unique_id, N.ERROR)
    following = advance(run, list(by_uid), known=done, keep=keep)
    return (mine.status if mine else N.ERROR), held, following


def _retries(run: Run, node: NodeRun, result: NodeResult) -> int:
    """Attempts a failed node gets: meta retries N (on_failure: retry), else 3 for a passing error
    (a lost connection, a lock timeout), else 1. A node past its time limit has status timeout, not
    error, and is never retried: its query would only time out again."""
    meta = _meta(run, node.unique_id)
    if meta.get("on_failure") == "retry" or "retries" in meta:
        try:
            return 1 + max(0, min(int(meta.get("retries", 2)), 10))
        except (TypeError, ValueError):
            return 1
    if (result.message or "").startswith("not deployed"):
        return 1
    return TRANSIENT_RETRIES if TRANSIENT.search(result.message or "") else 1


def manifest_or_none(run: Run) -> Manifest | None:
    try:
        return manifest_for(run.sha, run.target)
    except Exception:  # noqa: BLE001 - owners are a nicety
        return None


def _line_of(message: str | None, resource_type: str = "model") -> int | None:
    """The line of the node's compiled SQL an error points at. The warehouse numbers the lines of the
    statement it ran, and a model's SQL starts on line 2 of it (`create ... as (` comes first)."""
    if not message:
        return None
    m = re.search(r"LINE (\d+):|line (\d+)", message)
    if not m:
        return None
    line = int(next(g for g in m.groups() if g))
    if resource_type == "model":
        line -= 1
    return line if line >= 1 else None
