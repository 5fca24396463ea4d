"""One at a time per warehouse: deploys (and later scheduled runs) hold this lock while they build.

PostgreSQL warehouses: a session advisory lock on the warehouse itself, so it holds across machines
and is released when the holder's connection dies. DuckDB: an flock on a file beside the database
(one machine by nature), released by the kernel when the holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator

from runner.engine.adapters.duckdb import duckdb_path


class LockBusy(Exception):
    pass


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def warehouse_lock(url: str, name: str = "deploy", wait_seconds: float = 3600) -> Iterator[None]:
    deadline = time.monotonic() + wait_seconds
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            while not conn.execute("select pg_try_advisory_lock(%s)", (_key(name),)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise LockBusy(f"another {name} holds the warehouse")
                time.sleep(0.5)
            try:
                yield
            finally:
                conn.execute("select pg_advisory_unlock(%s)", (_key(name),))
        return
    path = duckdb_path(url)
    lock_path = f"{path}.{name}.lock" if path != ":memory:" else os.path.join("/tmp", f"dmaas-{name}-memory.lock")
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    with open(lock_path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockBusy(f"another {name} holds the warehouse") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
