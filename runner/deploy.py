"""Deploying a merged change: its models and everything downstream, built into production, gated.

`request_deploy(change)` records one Deployment per (change, merge commit, production schema) and
queues `runner.tasks.deploy`; asking again is a no-op, so a redelivered task or a second click
changes nothing. `execute(deployment_id)` (the task) takes the warehouse's deploy lock (one deploy
at a time per warehouse, runner/locks.py), compiles main at the merge commit and builds the models
the change modified and their downstream with the engine's gate (execution.RunOptions.gate): each
model's build and its error-severity tests run in one transaction, committed only if they pass. A
model that fails keeps its old relation serving and its children are skipped; the deployment is then
"failed" with the cause. A worker killed mid-deploy leaves each relation wholly old or wholly new
(the open transaction dies with its connection), and the deploy runs again:

- its worker beats the row (`heartbeat_at`) while it runs; `reconcile()` (beat, every minute, with
  runs.reconcile) puts back in the queue a running deployment whose beat stopped for
  DMAAS_DEPLOY_STALE_SECONDS, and sends its task again: redelivery within about a minute, not on
  the broker's own cycle (Redis gives an unacknowledged message back only after its visibility
  timeout, two hours). After DEPLOY_ATTEMPTS such deaths the deployment fails;
- nothing stays "running" past the task's hard time limit plus a minute: the reconciler fails it;
- a message delivered twice, or a resend racing the broker's redelivery, claims the same row and
  waits on the warehouse lock: whoever comes second finds it finished, so nothing is deployed twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from models_service import reading
from models_service.models import ChangeRequest
from models_service.repo import get_store
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, NodeResult, RunOptions
from runner.engine.project import MappingSource, load_project

from . import jobs, locks, preview
from . import warehouse as wh
from .models import Deployment, DeployStatus, MeasureKind
from .observe import record as observe

log = logging.getLogger(__name__)
D = DeployStatus
DEPLOY_ATTEMPTS = 3  # a deployment whose worker died this many times fails (the fourth would likely die too)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def request_deploy(change: ChangeRequest) -> Deployment | None:
    if not change.merged_sha:
        return None
    deployment, created = Deployment.objects.get_or_create(change=change, sha=change.merged_sha,
                                                           target=wh.production_schema(),
                                                           defaults={"heartbeat_at": timezone.now()})
    if created:
        transaction.on_commit(lambda: _enqueue(deployment.pk))
    return deployment


def _enqueue(deployment_id: int) -> None:
    from .tasks import deploy

    jobs.send(Deployment, deployment_id, deploy)  # the broker down: the row waits for the reconciler


def execute(deployment_id: int, worker: str | None = None) -> str:
    """Deploy to its end; returns the status. A deployment that has finished is left alone."""
    from .runs import worker_name

    deployment = jobs.claim(Deployment, deployment_id, "change", heartbeat_at=timezone.now(),
                            worker=worker or worker_name(), attempts=F("attempts") + 1)
    if deployment is None:
        return Deployment.objects.filter(pk=deployment_id).values_list("status", flat=True).first() or "missing"
    warehouse = wh.get_warehouse()
    beat = _setting("DMAAS_DEPLOY_HEARTBEAT_SECONDS", _setting("DMAAS_NODE_HEARTBEAT_SECONDS", 10))
    try:
        with jobs.Heartbeat(Deployment, deployment.pk, beat), locks.warehouse_lock(warehouse.url, "deploy"):
            # A second message for this deployment (a resend, a redelivery) that claimed it while the
            # first ran waits on the lock: once the first has finished it, there is nothing to redo.
            if Deployment.objects.filter(pk=deployment.pk, status=D.RUNNING).exists():
                _execute(deployment, warehouse)
    except Exception as err:  # noqa: BLE001 - recorded on the deployment, logged for us
        log.exception("deployment %s failed", deployment.pk)
        jobs.save(deployment, status=D.FAILED, message=f"The deploy could not run: {err}", finished_at=timezone.now())
    return deployment.status


def deployed_models(store: Any, sha: str) -> set[str]:
    """The models a merge commit changed on main (against its first parent)."""
    parents = store.parents(sha)
    if not parents:
        return set()
    return {d.name for d in reading.diff_between(store, parents[0], sha) if d.status != "deleted"}


def _execute(deployment: Deployment, warehouse: Any) -> None:
    store = get_store()
    files = preview.project_files(store, deployment.sha)
    project = load_project(MappingSource(dict(files)))
    names = deployed_models(store, deployment.sha)
    changed = {project.model_uid(n) for n in names} - {None}
    manifest = Compiler(project, Target(name="prod", schema=deployment.target, type=warehouse.type)).compile()
    selected = set(changed)
    for uid in changed:
        selected |= {d for d in manifest.graph.descendants(uid) if manifest.nodes[d].resource_type == "model"}
    selected = {u for u in selected if manifest.nodes[u].materialized != "ephemeral"}
    tests = {u for u, n in manifest.nodes.items() if n.resource_type == "test" and set(n.depends_on) & selected}
    rows: list[dict[str, Any]] = []

    def on_result(result: NodeResult) -> None:
        rows.append({"name": result.name, "kind": "test" if result.resource_type == "test" else "model",
                     "status": result.status, "message": result.message or "", "seconds": result.seconds,
                     "rows": result.failures if result.resource_type == "test" else result.rows})
        Deployment.objects.filter(pk=deployment.pk).update(nodes=rows)

    with warehouse.build() as adapter:
        options = RunOptions(command="build", threads=2, gate=True, on_result=on_result)
        summary = Executor(manifest, adapter, options).run(selected | tests)
        taken = observe.take(adapter, manifest, summary.results)
    observe.save_all(taken, MeasureKind.DEPLOY, deployment=deployment)
    bad = [r for r in summary.results if r.status in ("error", "fail", "skipped")]
    seconds = round(summary.elapsed, 3)
    if not bad:
        jobs.save(deployment, status=D.DEPLOYED, nodes=rows, seconds=seconds, finished_at=timezone.now())
        return
    first = next((r for r in bad if r.status == "error"), bad[0])
    jobs.save(deployment, status=D.FAILED, nodes=rows, seconds=seconds, finished_at=timezone.now(),
          message=f"{first.name}: {first.message}" if first.message else first.name)
    from . import incidents
    from .models import IncidentCause

    incidents.report(first.name, IncidentCause.DEPLOY_FAILED,
                     f"Deploying change #{deployment.change_id} failed: {deployment.message}", deployment=deployment)


def latest_deployment(change: ChangeRequest) -> Deployment | None:
    return Deployment.objects.filter(change=change).order_by("-created_at", "-id").first()


# --------------------------------------------------------------------------- the reconciler


def reconcile(now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic (runner.tasks.reconcile): deployments whose worker stopped beating go back in the queue
    (or fail after DEPLOY_ATTEMPTS); one running past the task's hard time limit plus a minute fails;
    a queued one whose message was lost (DMAAS_NODE_LOST_SECONDS without a sign) is sent again."""
    now = now or timezone.now()
    out = {"deploys_requeued": 0, "deploys_failed": 0, "deploys_resent": 0}
    stale = now - dt.timedelta(seconds=_setting("DMAAS_DEPLOY_STALE_SECONDS", _setting("DMAAS_NODE_STALE_SECONDS", 60)))
    for d in Deployment.objects.filter(status=D.RUNNING, heartbeat_at__lt=stale):
        alive = {"pk": d.pk, "status": D.RUNNING, "heartbeat_at__lt": stale}
        if d.attempts < DEPLOY_ATTEMPTS:
            if Deployment.objects.filter(**alive).update(
                    status=D.QUEUED, heartbeat_at=now,
                    message=f"The worker {d.worker or '?'} stopped mid-deploy; deploying again."):
                log.warning("deployment %s: worker %s stopped beating; queued again", d.pk, d.worker)
                transaction.on_commit(lambda pk=d.pk: _enqueue(pk))
                out["deploys_requeued"] += 1
        elif Deployment.objects.filter(**alive).update(
                status=D.FAILED, finished_at=now,
                message=f"Its worker stopped {d.attempts} times mid-deploy; giving up. Deploy it again once "
                        "the workers are healthy."):
            out["deploys_failed"] += 1
    hard = now - dt.timedelta(seconds=_setting("CELERY_TASK_TIME_LIMIT", 3600) + 60)
    out["deploys_failed"] += Deployment.objects.filter(status=D.RUNNING, started_at__lt=hard).update(
        status=D.FAILED, finished_at=now,
        message="The deploy ran past its time limit and was stopped; each model kept its old version.")
    lost = now - dt.timedelta(seconds=_setting("DMAAS_NODE_LOST_SECONDS", 600))
    for pk in list(Deployment.objects.filter(status=D.QUEUED, heartbeat_at__lt=lost).values_list("pk", flat=True)):
        if Deployment.objects.filter(pk=pk, status=D.QUEUED, heartbeat_at__lt=lost).update(heartbeat_at=now):
            transaction.on_commit(lambda pk=pk: _enqueue(pk))
            out["deploys_resent"] += 1
    return out
