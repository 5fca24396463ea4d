"""Celery tasks of the data-models repository. Each calls one service function; both are idempotent."""

from __future__ import annotations

from celery import shared_task

from . import sync


@shared_task(name="models_service.tasks.push_refs", ignore_result=True)
def push_refs() -> dict[str, int]:
    """Push the refs waiting in the outbox (queued after each write; a failure stays for sync_remote)."""
    return sync.push_pending()


@shared_task(name="models_service.tasks.sync_remote", ignore_result=True)
def sync_remote() -> str:
    """Periodic (beat): retry pending pushes, fetch engineers' commits to main, re-index, flag changes."""
    return sync.sync_remote().outcome
