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
