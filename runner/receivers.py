"""What the runner does when a change request moves (models_service.signals), connected in apps.py.

- submitted, or a new save while submitted: a CI build of the new head;
- approved (by a person or the policy), with the policy's merge_on_approval: merge, then deploy;
- merged: deploy, and drop the change's CI schema; abandoned: drop the CI schema.
Work is queued with transaction.on_commit, so a rolled-back move queues nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from models_service.models import ChangeRequest, ChangeState

S = ChangeState


def on_saved(sender: Any, change: ChangeRequest, sha: str, **kwargs: Any) -> None:
    if change.state == S.SUBMITTED:
        from . import ci

        ci.request_build(change)


def on_moved(sender: Any, change: ChangeRequest, old: str, new: str, **kwargs: Any) -> None:
    from . import ci, deploy, tasks
    from .models import ReviewPolicy

    if new == S.SUBMITTED and old != S.SUBMITTED:
        ci.request_build(change)
    elif new == S.APPROVED and ReviewPolicy.current().merge_on_approval:
        pk = change.pk
        transaction.on_commit(lambda: tasks.merge_approved.delay(pk))
    elif new == S.MERGED:
        deploy.request_deploy(change)
    if new in (S.MERGED, S.ABANDONED):
        pk = change.pk
        transaction.on_commit(lambda: tasks.drop_ci_schema.delay(pk))
