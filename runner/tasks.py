"""Celery tasks of the runner. Each calls one service function and is idempotent (acks_late)."""

from __future__ import annotations

from celery import shared_task

# The queue of work an analyst waits for (Test my model): workers consume it beside the default
# queue, and scheduled runs never sit in front of it (RELIABILITY.md L3). See portal/celery.py.
INTERACTIVE_QUEUE = "interactive"


@shared_task(name="runner.tasks.test_model", ignore_result=True, acks_late=True)
def test_model(run_id: int) -> str:
    """Run a queued "Test my model" (runner.testrun.execute); a finished run is left as it is."""
    from .testrun import execute

    return execute(run_id)


@shared_task(name="runner.tasks.ci_build", ignore_result=True, acks_late=True)
def ci_build(build_id: int) -> str:
    """Build and test a change's commit in its CI schema, then let the policy judge it (runner.ci)."""
    from .ci import execute

    return execute(build_id)


@shared_task(name="runner.tasks.merge_approved", ignore_result=True, acks_late=True)
def merge_approved(change_id: int) -> str:
    """Merge an approved change into main (the merge's signal then queues its deploy). A change that
    is no longer approved, or conflicts with main (it is flagged "needs update"), is left as it is."""
    from models_service import merging
    from models_service.errors import InvalidState, MergeConflict
    from models_service.models import ChangeRequest, ChangeState

    change = ChangeRequest.objects.filter(pk=change_id).first()
    if change is None or change.state != ChangeState.APPROVED:
        return "skipped"
    try:
        merging.merge_change(None, change, source="worker")
    except (InvalidState, MergeConflict) as err:
        return f"not merged: {err}"
    return "merged"


@shared_task(name="runner.tasks.deploy", ignore_result=True, acks_late=True, bind=True)
def deploy(self, deployment_id: int) -> str:
    """Deploy a merged change into production, gated by its tests (runner.deploy)."""
    from .deploy import execute
    from .runs import worker_name

    return execute(deployment_id, worker_name(getattr(self.request, "hostname", None)))


@shared_task(name="runner.tasks.drop_ci_schema", ignore_result=True, acks_late=True)
def drop_ci_schema(change_id: int) -> str:
    from .ci import drop_schema

    drop_schema(change_id)
    return "dropped"


# --------------------------------------------------------------------------- production runs (runner.runs)


def _node_time_limit() -> int:
    """Celery's hard limit of a run node (settings: the model's limit + 2 minutes; Redis's visibility
    timeout must exceed it, which the settings check)."""
    from django.conf import settings

    return int(getattr(settings, "DMAAS_RUN_NODE_TIME_LIMIT", 1020))


@shared_task(name="runner.tasks.fire_schedule", ignore_result=True, acks_late=True)
def fire_schedule(schedule_id: int, slot: str | None = None, trigger: str = "schedule") -> str:
    """Beat fires this for a schedule's slot; the run is created once per (schedule, slot)."""
    import datetime as dt

    from .runs import fire_schedule as fire

    run = fire(schedule_id, dt.datetime.fromisoformat(slot) if slot else None, trigger=trigger)
    return f"run {run.pk}: {run.status}" if run else "no run (this slot has one, or the schedule is off)"


@shared_task(name="runner.tasks.start_run", ignore_result=True, acks_late=True)
def start_run(run_id: int) -> str:
    """Start a queued run (one that waited for its target)."""
    from .models import OnOverlap, Run
    from .runs import start_run as start

    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    return start(run, on_overlap=OnOverlap.QUEUE).status


@shared_task(name="runner.tasks.run_node", ignore_result=True, acks_late=True, bind=True,
             soft_time_limit=_node_time_limit() - 60, time_limit=_node_time_limit())
def run_node(self, node_id: int) -> str:
    """Build or test one node of a run, then dispatch what it unblocks (runner.nodes.execute_node), and
    go on with one child it made ready while the task stays within Celery's soft limit. The model's own
    time limit cancels its query first (runner.nodes._TimeLimit); Celery's limits, a minute and two
    later, are the backstop for a worker stuck outside the warehouse."""
    from .nodes import execute_node, worker_name

    return execute_node(node_id, worker_name(getattr(self.request, "hostname", None)),
                        chain_seconds=float(self.soft_time_limit or _node_time_limit() - 60))


@shared_task(name="runner.tasks.judge_run", ignore_result=True, acks_late=True)
def judge_run(run_id: int) -> str:
    """Judge an ended run's measurements against each model's history (runner.observe.record.judge_run):
    anomalies, their incidents, PII scans. Queued through the outbox as the run closes."""
    from .observe.record import judge_run as judge

    return f"{judge(run_id)} judged"


@shared_task(name="runner.tasks.reconcile", ignore_result=True)
def reconcile() -> dict:
    """Periodic (beat): nodes and deploys of dead workers, lost messages, open runs, late scheduled runs,
    tasks whose send failed (the outbox)."""
    from .deploy import reconcile as deploy_reconcile
    from .runs import reconcile as run_reconcile

    return {**run_reconcile(), **deploy_reconcile()}


# --------------------------------------------------------------------------- the service agreement (runner.sla)


@shared_task(name="runner.tasks.sla_sweep", ignore_result=True)
def sla_sweep() -> dict:
    """Periodic (beat, every 5 minutes): tell each item going at risk or breached, once."""
    from .sla.alerts import sweep

    return sweep()


@shared_task(name="runner.tasks.sla_digest", ignore_result=True)
def sla_digest() -> dict:
    """Periodic (beat, daily at 08:00): the platform admins' digest, once a day."""
    from .sla.alerts import digest

    return digest()
