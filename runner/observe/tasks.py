"""Celery tasks of the data watch, and the receiver that queues them.

`scan_pii` reads a model's production relation and keeps what it finds as PiiTag rows
(runner.observe.pii.scan_model). It is queued after a production build measured a model that was
never scanned or whose columns changed (`on_measured`, connected in runner/apps.py, which imports
this module: that import also registers the task in the web process and in workers, since Celery's
autodiscovery only looks at runner/tasks.py).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

log = logging.getLogger(__name__)


@shared_task(name="runner.observe.tasks.scan_pii", ignore_result=True, acks_late=True)
def scan_pii(model: str, user_id: int | None = None) -> str:
    """Scan one model for PII. Idempotent: a rescan updates evidence and never overrides decisions. A
    model that has left main, or a warehouse that refuses the read, ends the task with a word why."""
    from django.contrib.auth import get_user_model

    from models_service.errors import NotFound
    from runner import warehouse as wh

    from .pii import scan_model

    actor = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        result = scan_model(model, actor=actor, source="worker")
    except NotFound as err:
        return f"skipped: {err.message}"
    except wh.PreviewError as err:
        log.warning("PII scan of %s could not read the warehouse: %s", model, err.message)
        return f"failed: {err.message}"
    if result.skipped:
        return f"skipped: {result.skipped}"
    return f"{len(result.created)} new, {len(result.updated)} updated, {len(result.reopened)} reopened"


def on_measured(sender: Any, measurement: Any, **kwargs: Any) -> None:
    """After a production build's measurement: scan the model when it was never scanned or its columns
    changed since the last scan. Queued after commit, so a rolled-back build queues nothing."""
    from runner.models import MeasureKind

    from .pii import needs_scan

    if getattr(measurement, "kind", MeasureKind.PRODUCTION) not in (MeasureKind.PRODUCTION, MeasureKind.DEPLOY):
        return  # CI and dev builds are not what people read
    columns = [str(c.get("name", "")) for c in (measurement.columns or []) if isinstance(c, dict)]
    model = measurement.model
    if columns and needs_scan(model, columns):
        transaction.on_commit(lambda: scan_pii.delay(model))
