"""Throughput control: at most DMAAS_WAREHOUSE_CONCURRENCY nodes in the warehouse at once, however
many workers run. A node claims one WarehouseSlot row by compare-and-set before it touches the
warehouse and gives it back after; a slot whose holder is no longer running (its worker died) is
taken back by the next claimer. Rows in the database, so it holds across machines and brokers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import NodeRun, NodeStatus, WarehouseSlot


def limit() -> int:
    return max(1, int(getattr(settings, "DMAAS_WAREHOUSE_CONCURRENCY", 4)))


_ensured: set[tuple[str, int]] = set()  # (target, limit) whose slot rows this process has seen exist


def _ensure(target: str, n: int) -> None:
    if (target, n) in _ensured:
        return
    have = set(WarehouseSlot.objects.filter(target=target).values_list("number", flat=True))
    for number in range(n):
        if number not in have:
            WarehouseSlot.objects.get_or_create(target=target, number=number)
    _ensured.add((target, n))


def claim(target: str, node: NodeRun, wait_seconds: float = 3600) -> WarehouseSlot:
    n = limit()
    _ensure(target, n)
    deadline = time.monotonic() + wait_seconds
    pause, rechecked = 0.05, False
    while True:
        free = list(WarehouseSlot.objects.filter(target=target, number__lt=n)
                    .filter(Q(holder__isnull=True) | ~Q(holder__status=NodeStatus.RUNNING) | Q(holder=node))
                    .values_list("pk", "holder_id"))
        if not free and not rechecked:
            # all taken, or the rows this process saw are gone (a test's rollback): look once more
            rechecked = True
            _ensured.discard((target, n))
            _ensure(target, n)
            continue
        for pk, holder in free:
            now = timezone.now()
            if WarehouseSlot.objects.filter(pk=pk, holder_id=holder).update(holder=node, claimed_at=now):
                return WarehouseSlot(pk=pk, target=target, holder=node, claimed_at=now)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free warehouse slot for {wait_seconds:.0f} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def release(node: NodeRun) -> None:
    WarehouseSlot.objects.filter(holder=node).update(holder=None, claimed_at=None)


def give_back(held: WarehouseSlot) -> None:
    """Free a slot this process claimed, unless it was taken back meanwhile (its holder had stopped)."""
    WarehouseSlot.objects.filter(pk=held.pk, holder_id=held.holder_id).update(holder=None, claimed_at=None)


def hand_over(held: WarehouseSlot, node: NodeRun) -> bool:
    """The slot of a finished node passes to the node its worker runs next (nodes.execute_node's
    continuation), in one compare-and-set: no other node got in meanwhile, so the limit holds and the
    next node does not queue for a slot behind other workers. False: it was taken back; claim anew."""
    now = timezone.now()
    if not WarehouseSlot.objects.filter(pk=held.pk, holder_id=held.holder_id, number__lt=limit()).update(
            holder=node, claimed_at=now):
        return False
    held.holder, held.claimed_at = node, now
    return True


@contextlib.contextmanager
def slot(target: str, node: NodeRun) -> Iterator[Any]:
    held = claim(target, node)
    try:
        yield held
    finally:
        give_back(held)
