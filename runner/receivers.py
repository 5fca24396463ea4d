"""What the runner does when a change request moves (models_service.signals), connected in apps.py.

- submitted, or a new save while submitted: a CI build of the new head;
- approved (by a person or the policy), with the policy's merge_on_approval: merge, then deploy;
- merged: deploy, and drop the change's CI schema; abandoned: drop the CI schema.
Work is queued with transaction.on_commit, so a rolled-back move queues nothing, and through an
outbox (a job's row, or runner.jobs.send_later's OutboxTask), so a move made while the broker is down
is sent by the reconciler once it answers: an approval is never lost.
"""

from __future__ import annotations

from typing import Any

from models_service.models import ChangeRequest, ChangeState

S = ChangeState


def on_saved(sender: Any, change: ChangeRequest, sha: str, **kwargs: Any) -> None:
    if change.state == S.SUBMITTED:
        from . import ci

        ci.request_build(change)


def on_moved(sender: Any, change: ChangeRequest, old: str, new: str, **kwargs: Any) -> None:
    from . import ci, deploy, jobs, tasks
    from .models import ReviewPolicy

    if new == S.SUBMITTED and old != S.SUBMITTED:
        ci.request_build(change)
    elif new == S.APPROVED and ReviewPolicy.current().merge_on_approval:
        jobs.send_later(tasks.merge_approved, change.pk)
    elif new == S.MERGED:
        deploy.request_deploy(change)
    if new in (S.MERGED, S.ABANDONED):
        jobs.send_later(tasks.drop_ci_schema, change.pk)
