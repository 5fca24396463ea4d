"""Running git: the one place that starts git processes, reads objects and holds the ref locks.

Every command gets `--git-dir` and a cleaned environment: inherited GIT_* variables that could point
git at another repository, index or object store (GIT_DIR, GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY,
replace refs, config injected through GIT_CONFIG_*) are dropped. Network commands additionally get
`protocol.allow=never` with only file, ssh and https allowed, and no terminal prompts.

Objects are read through GitPython's persistent `cat-file --batch` process, one per thread and
repository (GitPython's command objects are not thread-safe), and only by object id: a
persistent process may cache refs, so ref tips are always read fresh (`read_ref`). Objects are
written as loose files by the calling thread (objects.py) and refs moved through one long-running
`update-ref --stdin` per repository (pipes.py).
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import git  # GitPython: imported only inside models_service.git_store

from ..errors import Busy
from .objects import LooseWriter, object_id

KEEP_ENV = {"GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_ASKPASS"}
NETWORK_CONFIG = (
    "-c", "protocol.allow=never",
    "-c", "protocol.file.allow=always",
    "-c", "protocol.ssh.allow=always",
    "-c", "protocol.https.allow=always",
    "-c", "transfer.fsckObjects=true",
)
ZERO = "0" * 40
CRASH_ENV = "DMAAS_GIT_CRASH_AT"  # fault injection for tests: os._exit at a named point


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in KEEP_ENV}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_NO_REPLACE_OBJECTS": "1", "LC_ALL": "C", "LANG": "C"})
    if extra:
        env.update(extra)
    return env


class GitError(RuntimeError):
    """A git command failed. `stderr` is git's text: for logs, never shown to analysts as it is."""

    def __init__(self, args: list[str], returncode: int, stderr: str):
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args[:3])} failed ({returncode}): {stderr.strip()[:500]}")


def crash_point(name: str) -> None:
    """Tests set DMAAS_GIT_CRASH_AT=<name> in a child process to simulate a worker killed at that point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(75)


class Git:
    """Commands and object reads on one bare repository."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._local = threading.local()
        self._pipes_lock = threading.Lock()
        self._updater = None  # pipes.RefUpdater, started on first ref update
        self._writer: LooseWriter | None = None

    def _ref_updater(self):
        with self._pipes_lock:
            if self._updater is None:
                from .pipes import RefUpdater

                self._updater = RefUpdater(self.path)
            return self._updater

    def _loose(self) -> LooseWriter:
        writer = self._writer
        if writer is None:
            level = self._config_int("core.looseCompression", self._config_int("core.compression", 1))
            writer = self._writer = LooseWriter(self.path, max(-1, min(9, level)))
        return writer

    def _config_int(self, key: str, default: int) -> int:
        proc = self._exec(("config", "--int", "--get", key), check=False)
        try:
            return int(proc.stdout.decode().strip())
        except ValueError:
            return default

    # ------------------------------------------------------------------ commands

    def run(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            check: bool = True, timeout: float = 120, network: bool = False) -> subprocess.CompletedProcess:
        self.flush()  # a git process sees the objects this thread staged
        return self._exec(args, input=input, env=env, check=check, timeout=timeout, network=network)

    def _exec(self, args: tuple[str, ...], *, input: bytes | None = None, env: dict[str, str] | None = None,
              check: bool = True, timeout: float = 120, network: bool = False) -> subprocess.CompletedProcess:
        argv = ["git", "--git-dir", self.path, *(NETWORK_CONFIG if network else ()), *args]
        proc = subprocess.run(argv, input=input, capture_output=True, env=clean_env(env), timeout=timeout,
                              cwd=self.path if os.path.isdir(self.path) else None)
        if check and proc.returncode != 0:
            raise GitError(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
        return proc

    def out(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.decode("utf-8", "replace").strip()

    # ------------------------------------------------------------------ refs

    def read_ref(self, ref: str) -> str | None:
        """The commit a ref points at now, read from disk (loose file, then packed-refs), or None."""
        try:
            with open(os.path.join(self.path, ref), "rb") as fh:
                value = fh.read().strip().decode("ascii", "replace")
            if len(value) == 40 and all(c in "0123456789abcdef" for c in value):
                return value
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        else:  # a symbolic or unusual ref: let git resolve it
            return self._rev_parse(ref)
        try:
            with open(os.path.join(self.path, "packed-refs"), "rb") as fh:
                wanted = b" " + ref.encode() + b"\n"
                for line in fh:
                    if line.endswith(wanted) and not line.startswith((b"#", b"^")):
                        return line[:40].decode()
        except FileNotFoundError:
            pass
        return None

    def _rev_parse(self, ref: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}", check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def update_ref(self, ref: str, new: str, old: str | None, reason: str = "") -> bool:
        """Compare-and-swap: move `ref` from `old` (None: must not exist) to `new`. False if it moved
        (or its lock file is held). `reason` is for the caller's logs: the reflog says "dmaas"."""
        crash_point("before-update-ref")
        moved, stderr = self._ref_updater().swap(ref, new, old)
        if moved:
            crash_point("after-update-ref")
            return True
        if "Unable to create" in stderr and ".lock" in stderr:
            self._clear_stale_lock(ref)
        return False

    def _clear_stale_lock(self, ref: str, age: float = 2.0) -> None:
        """A `<ref>.lock` left by a git process killed mid-update blocks that ref for good.

        Called while holding this ref's portal lock, so no live portal writer owns the file; it is
        removed only once it is `age` seconds old, in case a process outside the portal made it.
        """
        lock = os.path.join(self.path, ref + ".lock")
        try:
            if time.time() - os.stat(lock).st_mtime > age:
                os.unlink(lock)
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ objects

    def _reader(self) -> git.Git:
        repo = getattr(self._local, "repo", None)
        if repo is None or self._local.pid != os.getpid():  # never share a parent's process after a fork
            repo = git.Repo(self.path)
            repo.git.update_environment(**{k: None for k in os.environ if k.startswith("GIT_") and k not in KEEP_ENV})
            self._local.repo, self._local.pid = repo, os.getpid()
        return repo.git

    def read(self, oid: str) -> tuple[str, bytes] | None:
        """(type, body) of an object by id, or None when it is missing."""
        staged = getattr(self._local, "staged", None)
        if staged and oid in staged:
            return staged[oid]
        try:
            _, kind, _, data = self._reader().get_object_data(oid)
        except ValueError:
            return None
        return kind.decode(), data

    def read_text(self, oid: str) -> str:
        found = self.read(oid)
        return found[1].decode("utf-8", "replace") if found else ""

    def has(self, oid: str) -> bool:
        staged = getattr(self._local, "staged", None)
        if staged and oid in staged:
            return True
        try:
            self._reader().get_object_header(oid)
        except ValueError:
            return False
        return True

    def write(self, kind: str, bodies: list[bytes]) -> list[str]:
        """Write objects of one type (blob, tree or commit) and return their ids (objects.py). Inside
        `staging()` they are only kept, readable by this thread, until `flush`."""
        staged = getattr(self._local, "staged", None)
        if staged is None:
            writer = self._loose()
            return [writer.write(kind, body) for body in bodies]
        oids = []
        for body in bodies:
            oid = object_id(kind, body)
            staged[oid] = (kind, body)
            oids.append(oid)
        return oids

    @contextmanager
    def staging(self) -> Iterator[None]:
        """Keep this thread's object writes in memory until `flush` (or the end of the block, which
        flushes; an exception discards what was not flushed: nothing reached the disk)."""
        self._local.staged = {}
        try:
            yield
            self.flush()
        finally:
            self._local.staged = None

    def flush(self) -> None:
        """Write this thread's staged objects, all durable when this returns (objects.py)."""
        staged = getattr(self._local, "staged", None)
        if staged:
            self._loose().write_many(staged)
            self._local.staged = {}

    def close(self) -> None:
        """Stop this thread's cat-file processes (GitPython keeps them for speed) and the ref updater."""
        repo = getattr(self._local, "repo", None)
        if repo is not None:
            repo.close()
            self._local.repo = None
        with self._pipes_lock:
            updater, self._updater = self._updater, None
        if updater is not None:
            updater.close()

    # ------------------------------------------------------------------ locks

    @contextmanager
    def locked(self, ref: str, timeout: float = 60) -> Iterator[None]:
        """Serialise writers of one ref across threads and processes (a file lock per ref).

        The compare-and-swap in update_ref stays the guarantee; the lock only keeps concurrent
        savers from redoing each other's work. A killed process's lock is released by the kernel.
        """
        key = hashlib.sha1(ref.encode()).hexdigest()[:16]
        thread_lock = _thread_lock(self.path, key)
        deadline = time.monotonic() + timeout
        if not thread_lock.acquire(timeout=timeout):
            raise Busy("Other saves kept the change busy for too long. Nothing was saved; please try again.")
        try:
            lock_dir = os.path.join(self.path, "dmaas", "locks")
            os.makedirs(lock_dir, exist_ok=True)
            fd = os.open(os.path.join(lock_dir, key), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                delay = 0.001
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise Busy("Another process kept the change busy for too long. Nothing was saved; "
                                       "please try again.") from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            thread_lock.release()


_thread_locks: dict[tuple[str, str], threading.Lock] = collections.defaultdict(threading.Lock)
_thread_locks_guard = threading.Lock()


def _thread_lock(path: str, key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks[(path, key)]
