"""Writing loose objects (blobs, trees, commits) straight into the object store, without a git process.

The store already builds every tree body in memory and computes every object id itself (trees.py);
git's part in writing an object was only to deflate it and put it in place, and a save paid for
that with two `hash-object` round trips on one shared pipe (serialising all threads) and a
`commit-tree` process (~3 ms to start, more under load). Here each object is written as git writes a
loose object (object-file.c): deflated (`core.looseCompression`) into a temporary file in its
`objects/xx/` folder, fsynced (`core.fsync=committed`), made read-only, then linked to its final
name. An object is therefore either absent or whole and durable under its name — never a partial
file that a later write would take for the object — and threads write in parallel.

A group of commits (the store's group commit) is staged first: its objects are kept in memory,
readable by the thread building the group, and written together when the group is complete,
their fsyncs run in parallel by a few threads (one wait for the thread holding the branch's lock
instead of one per object; the file system's journal commits them together) — all of them before
the ref update that makes them reachable.

An object that exists already is not rewritten; its file's time is refreshed as git does, so a
`git gc` that prunes unreachable loose objects by age does not drop it between our write and the
ref update that makes it reachable. A temporary file left by a killed process is removed by
`git gc` (`git prune` clears stale `tmp_obj_*`).

Commit objects are formatted as `git commit-tree` formats them: tree, parents, author and committer
lines with a Unix time and a numeric zone, a blank line, the message (UTF-8, no encoding header).
`git fsck --full` checks all of it; the tests run it after every kind of write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

FLUSH_THREADS = 8


def object_id(kind: str, body: bytes) -> str:
    """The SHA-1 git gives an object: lets the store build trees before writing them."""
    return hashlib.sha1(b"%s %d\x00" % (kind.encode(), len(body)) + body).hexdigest()


def signature(name: str, email: str, when: dt.datetime) -> bytes:
    """`Name <email> 1700000000 +0100`: an identity line of a commit (name and email already cleaned)."""
    if when.tzinfo is None:
        when = when.astimezone()
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    stamp = f"{int(when.timestamp())} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    return f"{name} <{email}> {stamp}".encode()


def commit_body(tree: str, parents: list[str], author: bytes, committer: bytes, message: str) -> bytes:
    lines = [b"tree " + tree.encode()]
    lines += [b"parent " + p.encode() for p in parents]
    lines += [b"author " + author, b"committer " + committer]
    return b"\n".join(lines) + b"\n\n" + message.encode("utf-8")


class LooseWriter:
    """Writes loose objects into one repository's object store. Thread-safe: no shared state."""

    def __init__(self, git_dir: str, compression: int = 1):
        self.objects = os.path.join(git_dir, "objects")
        self.compression = compression

    def path(self, oid: str) -> str:
        return os.path.join(self.objects, oid[:2], oid[2:])

    def write(self, kind: str, body: bytes) -> str:
        """Write one object (unless present) and return its id."""
        data = b"%s %d\x00" % (kind.encode(), len(body)) + body
        oid = hashlib.sha1(data).hexdigest()
        self._write(oid, data)
        return oid

    def write_many(self, objects: dict[str, tuple[str, bytes]]) -> None:
        """Write {id: (kind, body)} (ids as computed by `object_id`), in parallel; every one is durable
        under its name when this returns, or an exception is raised."""
        items = [(oid, b"%s %d\x00" % (kind.encode(), len(body)) + body) for oid, (kind, body) in objects.items()]
        if len(items) <= 1:
            for oid, data in items:
                self._write(oid, data)
            return
        for _ in _pool().map(lambda item: self._write(*item), items):
            pass

    def _write(self, oid: str, data: bytes) -> None:
        final = self.path(oid)
        if self._freshen(final):
            return
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=folder)
        try:
            try:
                view = memoryview(zlib.compress(data, self.compression))
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, final)
            except FileExistsError:  # another writer put the same object in place meanwhile
                pass
            except OSError:  # no hard links here (as git, fall back to a rename: same bytes either way)
                os.replace(tmp, final)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    @staticmethod
    def _freshen(path: str) -> bool:
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        except PermissionError:  # not ours to touch (a shared object store): present is what counts
            return os.path.exists(path)
        return True


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="dmaas-objects")
        return _executor


def _forget_pool_after_fork() -> None:
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def now() -> dt.datetime:
    """The current time in the process's local zone, as git stamps a committer."""
    return dt.datetime.fromtimestamp(time.time()).astimezone()
