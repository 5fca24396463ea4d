"""Real worker processes on a private broker, for the reliability suite: tests/runner/test_runs_workers.py's
`worker_process` (a `celery -A portal worker --pool=solo -Q celery,interactive` subprocess on this
test's portal database, repository, warehouse and broker keys), with what these cases need beside it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from celery import Celery

from tests.runner.test_runs_workers import _app, current, redis_options, worker_process

PREFIX = "rel:"


@contextmanager
def sending_to(url: str, **conf: Any) -> Iterator[Celery]:
    """This process sends its tasks (the service's `.delay()` calls) to the private Redis at `url`."""
    with current(_app("dmaas-reliability", broker_url=url, broker_transport_options=redis_options(PREFIX),
                      **conf)) as app:
        yield app


@contextmanager
def workers(tmp_path: Path, count: int, *, database_url: str, broker_url: str, warehouse_url: str,
            name: str = "w") -> Iterator[list[Any]]:
    with ExitStack() as stack:
        yield [stack.enter_context(worker_process(tmp_path, database_url=database_url, broker_url=broker_url,
                                                  prefix=PREFIX, warehouse_url=warehouse_url,
                                                  hostname=f"{name}{i}"))
               for i in range(count)]


def executed(tmp_path: Path, task: str) -> int:
    """Messages of `task` the worker processes under tmp_path ran to their end (their logs)."""
    pattern = re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded")
    return sum(len(pattern.findall(log.read_text())) for log in tmp_path.glob("*/worker.log"))
