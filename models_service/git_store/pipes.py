"""A long-running git process for the last plumbing step of every save: moving a ref.

Starting git costs ~4 ms here. `git update-ref --stdin` answers one request at a time on its pipe,
so one per repository (shared by threads, a lock around each request) moves a ref by
compare-and-swap in ~2 ms. (Objects, commits included, are written without a git process:
objects.py.)

A process that dies (update-ref exits on a failed compare-and-swap, by design) is started again on
the next request. If our own process dies mid-request, git reads end-of-file: an update-ref
transaction that was not committed is rolled back with its lock file removed — the ref stays at
its old commit.
"""

from __future__ import annotations

import os
import subprocess
import threading

from ._git import ZERO, GitError, clean_env


class Pipe:
    """One git process speaking a line protocol, restarted when it exits."""

    def __init__(self, path: str, args: list[str]):
        self.path, self.args = path, args
        self.proc: subprocess.Popen | None = None
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def _ensure(self) -> subprocess.Popen:
        if self.pid != os.getpid():  # a forked child (a prefork worker) never shares its parent's process
            self.proc, self.pid = None, os.getpid()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.proc = subprocess.Popen(["git", "--git-dir", self.path, *self.args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                                         cwd=self.path)
        return self.proc

    def exchange(self, request: bytes, answers: int) -> tuple[list[str], str]:
        """Send a request and read up to `answers` lines. A short list means the process exited;
        then the second value is its stderr."""
        proc = self._ensure()
        try:
            proc.stdin.write(request)
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        lines = []
        for _ in range(answers):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.decode("utf-8", "replace").rstrip("\n"))
        if len(lines) == answers:
            return lines, ""
        proc.wait(timeout=30)
        stderr = proc.stderr.read().decode("utf-8", "replace")
        self.close()
        return lines, stderr

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=30)


class RefUpdater:
    """`update-ref --stdin`: one transaction per compare-and-swap."""

    LOST = ("but expected", "already exists", "unable to resolve reference", "cannot lock ref")

    def __init__(self, path: str):
        self.pipe = Pipe(path, ["update-ref", "--stdin", "-m", "dmaas"])

    def swap(self, ref: str, new: str, old: str | None) -> tuple[bool, str]:
        """(True, "") when moved; (False, git's message) when the ref was not at `old` or is locked."""
        request = f"start\nupdate {ref} {new} {old or ZERO}\nprepare\ncommit\n".encode()
        with self.pipe.lock:
            lines, stderr = self.pipe.exchange(request, 3)
        if lines == ["start: ok", "prepare: ok", "commit: ok"]:
            return True, ""
        if any(marker in stderr for marker in self.LOST):
            return False, stderr
        raise GitError(["update-ref", ref], 1, stderr or f"unexpected answer {lines!r}")

    def close(self) -> None:
        with self.pipe.lock:
            self.pipe.close()
