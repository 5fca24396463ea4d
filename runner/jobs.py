"""What the runner's one-shot jobs share (Test my model, CI builds, deploys): the compare-and-set claim
a worker takes a row with, writing fields to the row and the object at once, and the sample of rows a
failing test found."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.utils import timezone

from . import warehouse as wh

log = logging.getLogger(__name__)
FAILING_SAMPLE = 10


def claim(model: type[models.Model], pk: int, *related: str) -> Any:
    """Take a queued job (or one redelivered while "running": its worker died) by compare-and-set;
    None when it has finished, or another worker took it."""
    updated = model.objects.filter(pk=pk, status__in=("queued", "running")).update(
        status="running", started_at=timezone.now(), finished_at=None, message="")
    return model.objects.select_related(*related).get(pk=pk) if updated else None


def save(obj: models.Model, **fields: Any) -> None:
    """Set fields on the object and its row (an update, so a concurrent write of other fields stays)."""
    for key, value in fields.items():
        setattr(obj, key, value)
    type(obj).objects.filter(pk=obj.pk).update(**fields)


def failing_rows(adapter: Any, sql: str) -> tuple[list[str], list[list[Any]]]:
    """A sample of the rows a test found (its query returns the failing rows)."""
    try:
        cur = adapter.execute(f"select * from (\n{sql}\n) as dmaas_failing limit {FAILING_SAMPLE}")
        columns = [getattr(d, "name", None) or d[0] for d in cur.description or []]
        rows = cur.fetchmany(FAILING_SAMPLE)
    except Exception:  # noqa: BLE001 - the verdict stands without its sample
        log.warning("could not sample failing rows", exc_info=True)
        return [], []
    return columns, [[wh.json_safe(v) for v in row] for row in rows]
