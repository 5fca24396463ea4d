"""The one way into the warehouse for the portal's web process and workers: build leases and previews.

Everything that touches `settings.DMAAS_WAREHOUSE` from Django goes through `get_warehouse()`:

- `warehouse.build()` is a context manager that yields an engine `Adapter` to build and test with
  (Test my model, and the scheduled runs should use it too);
- `warehouse.preview(sql, limit, timeout_ms)` runs one untrusted SELECT read-only, time-limited and
  row-capped, and answers JSON-safe rows (`QueryResult`) or raises `PreviewError`.

PostgreSQL
    Every call opens its own connection, so builds and previews never wait for each other. A preview
    runs in a `READ ONLY` transaction with a transaction-local `statement_timeout`, on
    `settings.DMAAS_PREVIEW_WAREHOUSE` when set (point it at a login role that may only SELECT: the
    database, not the parser, is the boundary), else on the warehouse URL. The transaction is always
    rolled back.

DuckDB (the embedded default): one owner at a time, the others reach the file through it
    A DuckDB file can be open read-write in one process only, and while it is, no other process can
    open it at all, not even read-only (see ../shared/TOOLCHAIN.md). So access is leased, and the
    process holding a write lease also serves the other processes' previews:

    * Two lock files beside the database (`flock`, so a killed process releases them):
      `<file>.lock` is held exclusively by the writer and shared by readers, `<file>.intent` is held
      exclusively by a writer from the moment it wants the file until it closes it.
    * A build (`build()`) takes the intent lock, waits for readers to leave, takes the data lock, opens
      the file read-write and, for as long as it holds it, listens on a private Unix socket. Leases of
      one process share one open database (threads of a build, or a build and a preview in the same
      process); the file is closed when the last lease of the process ends, except that a worker's
      run nodes linger (`build(linger=True)`, DMAAS_WAREHOUSE_LINGER_SECONDS, default 2): the file
      stays open that long for the worker's next node, which skips closing and reopening it and
      re-reading the catalog (~30 ms a node). A writer of another process that finds the file held
      asks the owner over its socket to yield; the owner closes as soon as no lease is left.
    * A preview first uses the database its own process has open, if any. Otherwise, when no writer
      wants the file, it opens it read-only itself (several processes may read at once), runs, and
      closes. When a writer holds the file, the preview is sent over the socket and runs inside the
      writer's process, on a cursor of its own, concurrently with the build (DuckDB's MVCC: the preview
      sees the last committed state and never a half-built table). So a running build never makes a
      preview fail or wait; only the hand-over (a writer waiting for readers to finish, at most one
      preview timeout) is waited out, up to `DMAAS_PREVIEW_WAIT_SECONDS`.
    * Every open uses the same configuration (`enable_external_access=false`, `lock_configuration=true`;
      DuckDB refuses a second configuration in one process), so builds cannot read server files either.
      A preview runs in `BEGIN TRANSACTION READ ONLY` (writes fail in DuckDB itself), after the engine's
      check that it is exactly one SELECT, wrapped in `select * from (...) limit n+1`, and is cancelled
      with `interrupt()` from a timer thread at its timeout.
    * The socket lives in a directory only this user can enter (0700), and it runs previews only:
      read-only, time-limited, external access off.

    Outside these leases nothing may open the file (`dmaas build` on the command line against the
    portal's file while the portal runs fails with DuckDB's lock error).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import decimal
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runner.engine.adapters import Adapter, adapter_for
from runner.engine.adapters.duckdb import DuckDBAdapter, duckdb_path

SAFE_DUCKDB_CONFIG = {"enable_external_access": False, "lock_configuration": True}
PREVIEW_PREFIX = "select * from (\n"  # the user's SQL starts on line 2 of what is executed
PREVIEW_SUFFIX = "\n) as dmaas_preview limit {limit}"
MAX_CELL_CHARS = 10_000
MAX_REQUEST_BYTES = 2 * 1024 * 1024


def setting(name: str, default: Any) -> Any:
    from django.conf import settings

    return getattr(settings, name, default)


def preview_max_rows() -> int:
    return int(setting("DMAAS_PREVIEW_MAX_ROWS", 1000))


def preview_timeout_ms() -> int:
    return int(setting("DMAAS_PREVIEW_TIMEOUT_MS", 30_000))


def production_schema() -> str:
    return str(setting("DMAAS_PRODUCTION_SCHEMA", "analytics"))


# --------------------------------------------------------------------------- results and errors


@dataclass
class QueryResult:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        # The rows as they are, not copied: they are JSON-safe values already, and dataclasses.asdict's
        # deep copy of 1,000 rows was about a third of a PostgreSQL preview's time in the server.
        return {"columns": [dict(c) for c in self.columns], "rows": self.rows, "row_count": self.row_count,
                "truncated": self.truncated, "elapsed_ms": self.elapsed_ms}


@dataclass
class PreviewError(Exception):
    """A preview that did not run: `code` is preview_failed | timeout | busy; the line and column are
    in the SQL as handed to `preview()` (not the wrapper), where the warehouse said."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line, "column": self.column}


def json_safe(value: Any) -> Any:
    """A cell as JSON: dates as ISO text, decimals as text (exact), bytes as base64, NaN as text."""
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
            return value[:MAX_CELL_CHARS] + "…"
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    return str(value)


def wrap_preview(sql: str, limit: int) -> str:
    return PREVIEW_PREFIX + sql.rstrip().rstrip(";") + PREVIEW_SUFFIX.format(limit=int(limit) + 1)


def _finish(columns: list[dict[str, str]], rows: list[tuple[Any, ...]], limit: int, started: float) -> QueryResult:
    truncated = len(rows) > limit
    rows = rows[:limit]
    return QueryResult(columns=columns, rows=[[json_safe(v) for v in row] for row in rows], row_count=len(rows),
                       truncated=truncated, elapsed_ms=round((time.monotonic() - started) * 1000, 2))


def _plain(message: str) -> str:
    """Warehouse messages without their class prefix ("Binder Error: ") and the position block."""
    text = message.split("\n\nLINE ", 1)[0].strip()
    text = re.sub(r"^[A-Za-z ]*(Error|Exception): ", "", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- DuckDB


def _duckdb_position(message: str) -> tuple[int | None, int | None]:
    """DuckDB's `LINE n: text` and caret line give the position in the executed SQL."""
    m = re.search(r"^LINE (\d+): ?(.*)\n(\s*)\^", message, re.M)
    if not m:
        m2 = re.search(r"LINE (\d+):", message)
        return (int(m2.group(1)), None) if m2 else (None, None)
    prefix = len(f"LINE {m.group(1)}: ")
    return int(m.group(1)), max(1, len(m.group(3)) - prefix + 1)


def _unwrapped(line: int | None) -> int | None:
    if line is None:
        return None
    line -= PREVIEW_PREFIX.count("\n")
    return line if line >= 1 else None


def duckdb_preview(db: Any, sql: str, limit: int, timeout_ms: int) -> QueryResult:
    """Run one SELECT on a cursor of `db` in a read-only transaction, interrupted at the timeout."""
    import duckdb

    started = time.monotonic()
    cur = db.cursor()
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        cur.interrupt()

    timer = threading.Timer(max(timeout_ms, 1) / 1000, stop)
    timer.daemon = True
    try:
        cur.execute("begin transaction read only")
        timer.start()
        cur.execute(wrap_preview(sql, limit))
        columns = [{"name": d[0], "type": str(d[1])} for d in cur.description or []]
        rows = cur.fetchmany(limit + 1)
        timer.cancel()
        return _finish(columns, rows, limit, started)
    except duckdb.Error as err:
        timer.cancel()
        if fired.is_set() or isinstance(err, duckdb.InterruptException):
            raise PreviewError("timeout", _timeout_message(timeout_ms)) from None
        text = str(err)
        line, column = _duckdb_position(text)
        message = _plain(text)
        if isinstance(err, duckdb.PermissionException) or "file system operations are disabled" in text:
            message = ("The preview cannot read files or reach the network: read tables through "
                       "ref() and source() instead.")
        elif "read-only mode" in text:
            message = "A preview may only read data; this query tries to write."
        raise PreviewError("preview_failed", message, _unwrapped(line), column) from None
    finally:
        timer.cancel()
        with contextlib.suppress(Exception):
            cur.execute("rollback")
        with contextlib.suppress(Exception):
            cur.close()


def _timeout_message(timeout_ms: int) -> str:
    seconds = timeout_ms / 1000
    shown = f"{seconds:g} second{'s' if seconds != 1 else ''}"
    return (f"The preview took longer than {shown} and was stopped. Make the query cheaper (filter early, "
            "avoid joins that multiply rows) or ask a platform admin about the limit.")


def _socket_dir() -> str:
    folder = os.path.join(tempfile.gettempdir(), f"dmaas-warehouse-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if info.st_uid != os.getuid() or (info.st_mode & 0o077):
        raise PermissionError(f"{folder} must belong to this user and be private (0700)")
    return folder


def _flock(fd: int, mode: int, deadline: float | None) -> bool:
    """Take a flock, polling until `deadline` (None: try once)."""
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if deadline is None or time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class _Retry(Exception):  # noqa: N818 - control flow: the owner closed meanwhile
    pass


class DuckDBHost:
    """This process's share of one DuckDB file: its open database (if any), its locks, its socket."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.cv = threading.Condition()
        self.db: Any = None
        self.mode: str | None = None  # "rw" | "ro" | None
        self.users = 0
        self.writers_waiting = 0
        self._gate = threading.Lock()  # one writer of this process opens at a time
        self._data_fd: int | None = None
        self._intent_fd: int | None = None
        self._server: _Server | None = None
        # Lingering (worker processes' builds): the file stays open `linger` seconds after the last
        # lease, so a worker's next node skips closing and reopening it (~30 ms); a writer of another
        # process asks over the socket (op "yield") and gets it as soon as no lease is left.
        self.linger = 0.0
        self.yield_requested = False
        self._generation = 0  # counts closes and reopenings: a linger timer closes only its own open
        # relation -> kind, valid while this process holds the file open read-write without a break
        # (nobody else can change it meanwhile); the leases' adapters share it instead of re-reading
        self.catalog: dict[tuple[str, str], str | None] | None = None
        atexit.register(self.close_lingering)  # a clean close (checkpoint) when a worker stops
        digest = hashlib.sha1(self.path.encode()).hexdigest()[:20]
        self.socket_path = os.path.join(_socket_dir(), f"{digest}.sock")

    def _open_lock(self, suffix: str) -> int:
        return os.open(self.path + suffix, os.O_RDWR | os.O_CREAT, 0o600)

    def _intent_free(self) -> bool:
        fd = self._open_lock(".intent")
        try:
            if _flock(fd, fcntl.LOCK_SH, None):
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
            return False
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ leases
    @contextlib.contextmanager
    def write_lease(self, wait_seconds: float, linger: float = 0.0) -> Iterator[Any]:
        db = self._acquire_write(wait_seconds)
        try:
            yield db
        except BaseException:
            self.catalog = None  # a build that broke off may have left what the cache does not know
            raise
        finally:
            self._release(linger)

    def _acquire_write(self, wait_seconds: float) -> Any:
        import duckdb

        with self.cv:
            if self.mode == "rw":
                self.users += 1
                return self.db
            self.writers_waiting += 1
        try:
            with self._gate:
                with self.cv:
                    if self.mode == "rw":
                        self.users += 1
                        return self.db
                deadline = time.monotonic() + wait_seconds
                intent = self._open_lock(".intent")
                data = None
                try:
                    while not _flock(intent, fcntl.LOCK_EX, None):
                        # a lingering owner hands the file over at once; asked again now and then, as
                        # an owner that was between two opens when asked may linger after the next
                        self._ask_to_yield()
                        if _flock(intent, fcntl.LOCK_EX, min(deadline, time.monotonic() + 0.25)):
                            break
                        if time.monotonic() >= deadline:
                            raise TimeoutError("the warehouse stayed busy")
                    with self.cv:  # this process's own readers finish first
                        while self.mode == "ro":
                            if not self.cv.wait(timeout=max(0.0, deadline - time.monotonic())):
                                raise TimeoutError("the warehouse stayed busy")
                    data = self._open_lock(".lock")
                    if not _flock(data, fcntl.LOCK_EX, deadline):
                        raise TimeoutError("the warehouse stayed busy")
                    db = duckdb.connect(self.path, config=dict(SAFE_DUCKDB_CONFIG))
                    server = _Server(self)
                except BaseException:
                    for fd in (data, intent):
                        if fd is not None:
                            os.close(fd)  # closing releases the flock
                    raise
                with self.cv:
                    self.db, self.mode, self.users = db, "rw", 1
                    self._data_fd, self._intent_fd, self._server = data, intent, server
                    self.yield_requested, self.catalog = False, None
                    self._generation += 1
                server.start()
                return db
        finally:
            with self.cv:
                self.writers_waiting -= 1
                self.cv.notify_all()

    def _try_read_locally(self) -> bool:
        """Join this process's open database, or open the file read-only; False if a writer wants it."""
        import duckdb

        with self.cv:
            if self.mode == "rw":
                self.users += 1
                return True
            if self.writers_waiting or not self._intent_free():
                return False
            if self.mode == "ro":
                self.users += 1
                return True
            data = self._open_lock(".lock")
            if not _flock(data, fcntl.LOCK_SH, None):
                os.close(data)
                return False
            try:
                self.db = duckdb.connect(self.path, read_only=True, config=dict(SAFE_DUCKDB_CONFIG))
            except duckdb.Error:
                os.close(data)
                # the file does not exist yet (nothing was ever built) or another tool holds it
                if not os.path.exists(self.path):
                    raise PreviewError("preview_failed", "The warehouse is empty: nothing has been built yet.") from None
                return False
            self.mode, self.users, self._data_fd = "ro", 1, data
            return True

    def _release(self, linger: float = 0.0) -> None:
        with self.cv:
            self.users -= 1
            if self.users > 0:
                return
            # a preview that joined a lingering open keeps it lingering
            linger = max(linger, self.linger) if self.mode == "rw" else 0.0
            self.linger = linger
            if linger > 0 and not self.yield_requested:
                timer = threading.Timer(linger, self._close_lingering, args=(self._generation,))
                timer.daemon = True
                timer.start()
                return
            self._close_locked()

    def _close_lingering(self, generation: int) -> None:
        with self.cv:
            if self.users == 0 and self.mode == "rw" and self._generation == generation:
                self._close_locked()

    def yield_file(self) -> None:
        """Another process wants to write: close now if no lease is left, else when the last one ends."""
        with self.cv:
            self.yield_requested = True
            if self.users == 0 and self.mode == "rw":
                self._close_locked()

    def close_lingering(self) -> None:
        """Close the file if only lingering holds it (worker shutdown, tests)."""
        with self.cv:
            if self.users == 0 and self.mode is not None:
                self._close_locked()

    def _ask_to_yield(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(2)
            sock.connect(self.socket_path)
            sock.sendall(b'{"op": "yield"}\n')
            sock.recv(64)
        except OSError:
            pass  # no owner listening (a build of another process is starting or ending): wait for it
        finally:
            sock.close()

    def _close_locked(self) -> None:
        server, db = self._server, self.db
        self._server, self.db, self.mode = None, None, None
        self.catalog, self._generation, self.linger = None, self._generation + 1, 0.0
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            db.close()
        for fd in (self._data_fd, self._intent_fd):
            if fd is not None:
                os.close(fd)
        self._data_fd = self._intent_fd = None
        self.cv.notify_all()

    def _join_for_remote(self) -> Any:
        """A preview that came over the socket joins the write lease, if it still exists."""
        with self.cv:
            if self.mode != "rw":
                raise _Retry()
            self.users += 1
            return self.db

    # ------------------------------------------------------------------ previews
    def preview(self, sql: str, limit: int, timeout_ms: int, wait_seconds: float) -> QueryResult:
        deadline = time.monotonic() + wait_seconds
        while True:
            if self._try_read_locally():
                try:
                    return duckdb_preview(self.db, sql, limit, timeout_ms)
                finally:
                    self._release()
            try:
                return self._remote(sql, limit, timeout_ms)
            except _Retry:
                pass
            if time.monotonic() >= deadline:
                raise PreviewError("busy", "The warehouse is busy handing over between runs; try again in a moment.")
            time.sleep(0.03)

    def _remote(self, sql: str, limit: int, timeout_ms: int) -> QueryResult:
        request = json.dumps({"op": "preview", "sql": sql, "limit": limit, "timeout_ms": timeout_ms}).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_ms / 1000 + 30)
            try:
                sock.connect(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError):
                raise _Retry() from None
            sock.sendall(request + b"\n")
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            raise _Retry() from None
        finally:
            sock.close()
        if not chunks:
            raise _Retry()
        answer = json.loads(b"".join(chunks))
        if answer.get("retry"):
            raise _Retry()
        if "error" in answer:
            e = answer["error"]
            raise PreviewError(e["code"], e["message"], e.get("line"), e.get("column"))
        return QueryResult(**answer["result"])


class _Server:
    """The write-lease holder's socket: runs other processes' previews on its open database."""

    def __init__(self, host: DuckDBHost):
        self.host = host
        with contextlib.suppress(FileNotFoundError):
            os.unlink(host.socket_path)  # a stale one: we hold the write lock, so no live owner made it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(host.socket_path)
        os.chmod(host.socket_path, 0o600)
        self.sock.listen(64)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="dmaas-warehouse-owner", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            os.unlink(self.host.socket_path)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), name="dmaas-preview", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while not data.endswith(b"\n") and len(data) < MAX_REQUEST_BYTES:
                    chunk = conn.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
                request = json.loads(data)
                if request.get("op") == "yield":
                    # answered first: closing stops this server, and the asker waits on the lock anyway
                    conn.sendall(b'{"ok": true}')
                    threading.Thread(target=self.host.yield_file, daemon=True).start()
                    return
                if request.get("op") != "preview":
                    raise ValueError("unknown request")
                limit = min(int(request["limit"]), 100_000)
                timeout_ms = int(request["timeout_ms"])
                try:
                    db = self.host._join_for_remote()
                except _Retry:
                    conn.sendall(b'{"retry": true}')
                    return
                try:
                    result = duckdb_preview(db, str(request["sql"]), limit, timeout_ms)
                    answer: dict[str, Any] = {"result": result.as_dict()}
                except PreviewError as err:
                    answer = {"error": err.as_dict()}
                finally:
                    self.host._release()
                conn.settimeout(None)
                conn.sendall(json.dumps(answer).encode())
            except (OSError, ValueError, KeyError, TypeError):
                return


class _LeasedDuckDBAdapter(DuckDBAdapter):
    """The engine's DuckDB adapter on the lease's open database; closing it keeps the database open."""

    def __init__(self, url: str, db: Any, host: DuckDBHost | None = None):
        super().__init__(url, safe=True)
        self._db = db
        self._host = host
        if host is not None and host.catalog is not None:
            self._catalog = host.catalog  # shared, so what this build creates or drops stays known

    def prime_catalog(self) -> dict[tuple[str, str], str | None]:
        relations = super().prime_catalog()
        if self._host is not None and self._catalog is not None:
            self._host.catalog = self._catalog
        return relations

    def close(self) -> None:
        Adapter.close(self)  # the cursors; the database belongs to the lease
        self._db = None


# --------------------------------------------------------------------------- the warehouses


class _NoHold:
    """Warehouses where every build has its own connection: nothing to keep between nodes."""

    def join(self) -> None:
        pass

    def between_nodes(self) -> None:
        pass


class _Hold:
    """A worker's run of nodes keeps this process's DuckDB file open from one node to the next (one
    task going on with the next node: runner.nodes.execute_node), so the file is not handed to
    another worker between every two nodes (close, reopen and a catalog read, ~30-50 ms each time).
    Fair all the same: when another process asks for the file, it gets it at the next node's end once
    this process has had it DMAAS_WAREHOUSE_HOLD_SECONDS (default 1) since the hold began. (Joined
    inside a node's lease: a process that got the file after waiting runs its share even though the
    one it took it from asks for it back at once.) A longer hold (3 s) was measured for issue 7 with
    bench/run.py (500 models, 1/2/4 workers over Redis, three pairs of runs): no better on every worker
    count (2 workers 13.0-17.5 ms a node against 11.1-13.0 with 1 s), and another writer of the file
    (Test my model, a CI build, a deploy) would wait up to three times as long, so 1 s stays."""

    def __init__(self, host: DuckDBHost, seconds: float):
        self.host, self.seconds = host, seconds
        self.since: float | None = None  # holding (a lease of ours on the open file) since

    def join(self) -> None:
        """Called inside a build lease: the open file stays this process's past the lease's end."""
        host = self.host
        with host.cv:
            if self.since is None and host.mode == "rw":
                host.users += 1
                self.since = time.monotonic()

    def between_nodes(self) -> None:
        host = self.host
        with host.cv:
            if self.since is None or not host.yield_requested or time.monotonic() - self.since < self.seconds:
                return
        self.release()

    def release(self) -> None:
        if self.since is not None:
            self.since = None
            self.host._release(float(setting("DMAAS_WAREHOUSE_LINGER_SECONDS", 2.0)))


class Warehouse:
    type = "base"
    dialect = "duckdb"

    def __init__(self, url: str):
        self.url = url

    @contextlib.contextmanager
    def hold(self) -> Iterator[_NoHold | _Hold]:
        """Keep what a worker's builds share open between its nodes (see _Hold); nothing elsewhere."""
        yield _NoHold()

    @contextlib.contextmanager
    def build(self, wait_seconds: float | None = None, *, linger: bool = False) -> Iterator[Adapter]:  # pragma: no cover
        raise NotImplementedError
        yield

    def preview(self, sql: str, limit: int, timeout_ms: int | None = None) -> QueryResult:  # pragma: no cover
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    type = "duckdb"
    dialect = "duckdb"

    def __init__(self, url: str):
        super().__init__(url)
        self.path = duckdb_path(url)
        self.host = DuckDBHost(self.path) if self.path != ":memory:" else None
        self._memory: Any = None
        self._memory_lock = threading.Lock()

    def _memory_db(self) -> Any:
        import duckdb

        with self._memory_lock:
            if self._memory is None:
                self._memory = duckdb.connect(":memory:", config=dict(SAFE_DUCKDB_CONFIG))
            return self._memory

    @contextlib.contextmanager
    def build(self, wait_seconds: float | None = None, *, linger: bool = False) -> Iterator[Adapter]:
        """A write lease. `linger` (a worker's nodes): keep the file open DMAAS_WAREHOUSE_LINGER_SECONDS
        after it, for the next node of this process, unless another process asks for it."""
        wait = float(setting("DMAAS_WAREHOUSE_WAIT_SECONDS", 3600)) if wait_seconds is None else wait_seconds
        if self.host is None:
            adapter = _LeasedDuckDBAdapter(self.url, self._memory_db())
            try:
                yield adapter
            finally:
                adapter.close()
            return
        keep = float(setting("DMAAS_WAREHOUSE_LINGER_SECONDS", 2.0)) if linger else 0.0
        with self.host.write_lease(wait, keep) as db:
            adapter = _LeasedDuckDBAdapter(self.url, db, self.host)
            try:
                yield adapter
            finally:
                adapter.close()

    @contextlib.contextmanager
    def hold(self) -> Iterator[_NoHold | _Hold]:
        if self.host is None:
            yield _NoHold()
            return
        held = _Hold(self.host, float(setting("DMAAS_WAREHOUSE_HOLD_SECONDS", 1.0)))
        try:
            yield held
        finally:
            held.release()

    def preview(self, sql: str, limit: int, timeout_ms: int | None = None) -> QueryResult:
        timeout_ms = preview_timeout_ms() if timeout_ms is None else timeout_ms
        if self.host is None:
            return duckdb_preview(self._memory_db(), sql, limit, timeout_ms)
        wait = float(setting("DMAAS_PREVIEW_WAIT_SECONDS", 60)) + timeout_ms / 1000
        if not os.path.exists(self.path):
            with self.host.write_lease(wait):  # a fresh install: create the (empty) warehouse
                pass
        return self.host.preview(sql, limit, timeout_ms, wait)


class PostgresWarehouse(Warehouse):
    type = "postgres"
    dialect = "postgres"

    @contextlib.contextmanager
    def build(self, wait_seconds: float | None = None, *, linger: bool = False) -> Iterator[Adapter]:
        adapter = adapter_for(self.url)
        try:
            yield adapter
        finally:
            adapter.close()

    def preview(self, sql: str, limit: int, timeout_ms: int | None = None) -> QueryResult:
        import psycopg

        timeout_ms = preview_timeout_ms() if timeout_ms is None else timeout_ms
        url = setting("DMAAS_PREVIEW_WAREHOUSE", "") or self.url
        started = time.monotonic()
        wrapped = wrap_preview(sql, limit)
        try:
            conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
        except psycopg.OperationalError as err:
            raise PreviewError("preview_failed", f"The warehouse cannot be reached: {_plain(str(err))}") from None
        try:
            with conn.cursor() as cur:
                cur.execute(b"set transaction read only")
                cur.execute("select set_config('statement_timeout', %s, true)", (str(int(timeout_ms)),))
                cur.execute(wrapped.encode())  # bytes: no %-placeholder parsing of the user's text
                description = list(cur.description or [])
                rows = cur.fetchmany(limit + 1)
                columns = _postgres_columns(cur, description)
            return _finish(columns, rows, limit, started)
        except psycopg.errors.QueryCanceled:
            raise PreviewError("timeout", _timeout_message(timeout_ms)) from None
        except psycopg.Error as err:
            line = column = None
            position = getattr(getattr(err, "diag", None), "statement_position", None)
            if position:
                offset = int(position) - 1
                line = _unwrapped(wrapped.count("\n", 0, offset) + 1)
                column = offset - (wrapped.rfind("\n", 0, offset) + 1) + 1
            primary = getattr(getattr(err, "diag", None), "message_primary", None) or str(err)
            if isinstance(err, psycopg.errors.ReadOnlySqlTransaction):
                primary = "A preview may only read data; this query tries to write."
            raise PreviewError("preview_failed", _plain(primary), line, column) from None
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
            conn.close()


def _postgres_columns(cur: Any, description: list[Any]) -> list[dict[str, str]]:
    """Column types as SQL names (integer, numeric(10,2)), not the driver's internal ones (int4)."""
    oids = sorted({int(c.type_code) for c in description})
    names = dict(cur.execute("select t::oid::int, format_type(t, null) from unnest(%s::oid[]) as t",
                             (oids,)).fetchall()) if oids else {}
    out = []
    for c in description:
        display = c.type_display or ""
        suffix = display[display.index("("):] if "(" in display else ""
        out.append({"name": c.name, "type": names.get(int(c.type_code), display) + suffix})
    return out


_warehouses: dict[str, Warehouse] = {}
_warehouses_lock = threading.Lock()


def get_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse at `url` (default settings.DMAAS_WAREHOUSE); one object per URL and process."""
    url = url or str(setting("DMAAS_WAREHOUSE", ""))
    with _warehouses_lock:
        found = _warehouses.get(url)
        if found is None:
            if url.startswith("duckdb://"):
                found = DuckDBWarehouse(url)
            elif url.startswith(("postgresql://", "postgres://")):
                found = PostgresWarehouse(url)
            else:
                raise ValueError(f"unknown warehouse URL {url!r}: use duckdb:///path or postgresql://...")
            _warehouses[url] = found
        return found


def forget_warehouses() -> None:
    """Drop the cached warehouse objects (tests switch DMAAS_WAREHOUSE between files and servers)."""
    with _warehouses_lock:
        for found in _warehouses.values():
            close_lingering(found)
        _warehouses.clear()


def close_lingering(warehouse: Warehouse | None = None) -> None:
    """Close a DuckDB file kept open only by lingering (all of this process's when None): at a worker's
    shutdown, and before something outside the leases opens the file."""
    found = [warehouse] if warehouse is not None else list(_warehouses.values())
    for w in found:
        host = getattr(w, "host", None)
        if host is not None:
            host.close_lingering()
