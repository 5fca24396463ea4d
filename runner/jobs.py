"""What the runner's one-shot jobs share (Test my model, CI builds, deploys): the compare-and-set claim
a worker takes a row with, the heartbeat a long job beats its row with, writing fields to the row and
the object at once, the sample of rows a failing test found, and sending tasks when the broker may be
down (a job's row, or an OutboxTask, waits for the reconciler)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from . import warehouse as wh

log = logging.getLogger(__name__)
FAILING_SAMPLE = 10


def claim(model: type[models.Model], pk: int, *related: str, **fields: Any) -> Any:
    """Take a queued job (or one redelivered while "running": its worker died) by compare-and-set,
    setting `fields` beside; None when it has finished, or another worker took it."""
    updated = model.objects.filter(pk=pk, status__in=("queued", "running")).update(
        status="running", started_at=timezone.now(), finished_at=None, message="", **fields)
    return model.objects.select_related(*related).get(pk=pk) if updated else None


def save(obj: models.Model, **fields: Any) -> None:
    """Set fields on the object and its row (an update, so a concurrent write of other fields stays)."""
    for key, value in fields.items():
        setattr(obj, key, value)
    type(obj).objects.filter(pk=obj.pk).update(**fields)


class Heartbeat:
    """Beats `heartbeat_at` on the job's row while it is "running" (a thread of the worker), so the
    reconciler can tell a dead worker (no beat for a while) from a long job."""

    def __init__(self, model: type[models.Model], pk: int, every: float):
        self.model, self.pk, self.every = model, pk, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{model.__name__}-{pk}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.every):
                try:
                    self.model.objects.filter(pk=self.pk, status="running").update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a missed beat; the portal's database may be back next time
                    log.warning("could not beat %s %s", self.model.__name__, self.pk, exc_info=True)
                    connection.close()
        finally:
            connection.close()


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


# --------------------------------------------------------------------------- sending with the broker down

# A job's row is its outbox record (RELIABILITY.md F4). The row is written in the request's transaction;
# its task is sent after the commit. When the broker is down the send fails: the row stays "queued"
# with this mark, the request still succeeds (the save is a commit already), and the reconciler
# (beat, every minute) sends the marked rows again once the broker answers. Only rows whose send
# failed are sent again, so a queue that is merely long never gets a second message.
UNSENT = "Waiting for the task queue (it was unreachable); it is sent again when it answers."


def send(model: type[models.Model], pk: int, task: Any) -> bool:
    """`task.delay(pk)` for the job row `model(pk)`; on a broker error, mark the row for the reconciler."""
    from kombu.exceptions import KombuError

    try:
        task.delay(pk)
    except (KombuError, OSError) as err:
        log.warning("could not queue %s %s (the reconciler sends it again): %s", model.__name__, pk, err)
        model.objects.filter(pk=pk, status="queued").update(message=UNSENT)
        return False
    return True


def send_later(task: Any, arg: int) -> None:
    """`task.delay(arg)` once this transaction commits, never lost when the broker is down: an OutboxTask
    row is written now, in the transaction, and deleted once the message is sent; when the send fails
    (or this process dies first) the reconciler sends it. Asking twice before it is sent sends once."""
    from .models import OutboxTask

    row, created = OutboxTask.objects.get_or_create(task=task.name, arg=arg)
    if created:  # else it is on its way already, from this transaction or the reconciler
        transaction.on_commit(lambda: _send_outbox(task, row.pk, arg))


def _send_outbox(task: Any, row_id: int, arg: int) -> bool:
    from kombu.exceptions import KombuError

    from .models import OutboxTask

    try:
        task.delay(arg)
    except (KombuError, OSError) as err:
        log.warning("could not queue %s(%s) (the reconciler sends it again): %s", task.name, arg, err)
        OutboxTask.objects.filter(pk=row_id).update(attempts=models.F("attempts") + 1, last_error=str(err)[:1000])
        return False
    OutboxTask.objects.filter(pk=row_id).delete()
    return True


def resend_outbox(now: dt.datetime | None = None) -> int:
    """Send the OutboxTasks whose send failed, or that were never tried for a while (their sender died
    between its commit and its send); the count sent."""
    from . import tasks
    from .models import OutboxTask

    now = now or timezone.now()
    forgotten = now - dt.timedelta(seconds=60)
    sent = 0
    for row in list(OutboxTask.objects.filter(models.Q(attempts__gt=0) | models.Q(created_at__lt=forgotten))):
        task = getattr(tasks, row.task.rsplit(".", 1)[-1], None)
        if task is None or task.name != row.task:
            log.error("outbox: no task %s; dropping %s", row.task, row)
            OutboxTask.objects.filter(pk=row.pk).delete()
            continue
        if not _send_outbox(task, row.pk, row.arg):
            return sent  # still down: the next pass tries again
        sent += 1
    return sent


def resend_unsent() -> int:
    """Periodic (runs.reconcile): send the jobs whose first send failed, and the outbox; the count sent."""
    from . import tasks
    from .models import CIBuild, Deployment, TestRun

    sent = resend_outbox()
    for model, task in ((CIBuild, tasks.ci_build), (Deployment, tasks.deploy), (TestRun, tasks.test_model)):
        for pk in list(model.objects.filter(status="queued", message=UNSENT).values_list("pk", flat=True)):
            if not send(model, pk, task):
                return sent  # still down: the next pass tries again
            model.objects.filter(pk=pk, status="queued", message=UNSENT).update(message="")
            sent += 1
    return sent
