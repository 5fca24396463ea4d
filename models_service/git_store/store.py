"""The bare data-models repository: snapshots to read, commits by compare-and-swap to write.

A write (`GitStore.commit`) never touches a work tree or the shared index:

1. under the ref's lock, read the ref's tip and give a `Snapshot` of it to the caller's `build`
   function, which returns the files to write (or raises Conflict);
2. hash the new blobs, rebuild only the trees along the changed paths (in memory, see trees.py),
   and write those objects and the commit object (the analyst as author, the portal as committer)
   as loose objects, each fsynced before it gets its name (objects.py; core.fsync covers what git
   writes itself);
3. `update <ref> <new> <old>` through `git update-ref --stdin`: a compare-and-swap (one transaction,
   see pipes.py; `git update-ref -- <ref> <new> <old>` for the same effect). If the ref moved meanwhile (a
   writer that did not hold our lock), start again from 1 on the new tip: `build` sees the new
   files and decides whether the save still applies or is now a conflict. Nothing is overwritten.

Group commit: saves to one ref from threads of one process queue up. The thread holding the
ref's lock (the leader) applies every save waiting at that moment (up to MAX_BATCH) in arrival
order, each as its own commit by its own author on top of the previous one (each `build` sees
the commits before it), then moves the ref once, from the old tip to the last commit. Only then
does any of those saves return (or raise what its `build` raised): a save is acknowledged only
once its commit is on the branch, and if the compare-and-swap fails the whole group is built again
on the new tip. Saves wait for the lock once per group instead of once each, and the ref's lock
file, fsync and reflog entry are paid once per group.

A process killed anywhere in 2 leaves unreferenced objects (harmless, `git gc` prunes them) and the
ref at its old commit; killed after 3, at the new one (with every commit of the group).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import git  # GitPython: imported only inside models_service.git_store

from ..errors import Busy, InvalidName
from . import names
from ._git import ZERO, Git, GitError, crash_point
from .objects import commit_body, now, object_id, signature
from .trees import BLOB_MODE, Entry, Tree, TreeCache, edit

REPO_CONFIG = {
    # Objects and refs reach the disk before git reports success (Gitaly lost refs without this).
    "core.fsync": "committed,reference",
    "core.fsyncMethod": "fsync",
    "core.logAllRefUpdates": "true",
    # A save rewrites its folder's tree (760 KB for 10,000 models in one folder) as a loose object.
    # Deflating it costs 21 ms at zlib level 1 and 38 ms at the default; stored (level 0) 10 ms. Loose
    # objects are short-lived: `git gc --auto` (run by the periodic sync task) packs them with deltas.
    "core.looseCompression": "0",
    "receive.fsckObjects": "true",
    "fetch.fsckObjects": "true",
    # No transport helper (ext::, fd::) whatever a URL says; see names.repository_url.
    "protocol.allow": "never",
    "protocol.file.allow": "always",
    "protocol.ssh.allow": "always",
    "protocol.https.allow": "always",
}
MAX_ATTEMPTS = 8
MAX_BATCH = 25  # commits one leader applies before it moves the ref (and acknowledges them)
WAIT_SECONDS = 60  # a save not started by then gives up with Busy (nothing saved)


@dataclass(frozen=True)
class Identity:
    """Who a commit is by. Characters git would mangle in a header (<, >, newlines) are removed."""

    name: str
    email: str

    def clean(self) -> Identity:
        def strip(text: str) -> str:
            text = "".join(c for c in (text or "") if c not in "<>\n\r\x00" and ord(c) >= 32)
            return " ".join(text.split())

        return Identity(strip(self.name) or "unknown", strip(self.email).replace(" ", "") or "unknown@dmaas.invalid")


SYSTEM = Identity("dmaas", "dmaas@dmaas.invalid")


@dataclass
class Edit:
    """What `build` returns: {path: new bytes, or None to delete} and the commit message."""

    files: dict[str, bytes | None]
    message: str
    data: dict = field(default_factory=dict)  # anything the caller wants back in the result


@dataclass
class CommitResult:
    sha: str  # the ref's commit after the write (unchanged when nothing changed)
    parent: str | None
    ref: str
    changed: bool
    attempts: int
    edit: Edit | None


class Snapshot:
    """The files of one commit, read on demand through the object store."""

    def __init__(self, store: GitStore, commit: str | None, root: str | None = None):
        """`root`: the commit's tree when the caller knows it (saves one object read), or the tree
        to read when there is no commit."""
        self.store = store
        self.commit = commit
        self.root = root if root is not None or not commit else store.commit_tree_id(commit)
        # Scratch space shared by the builds of one group commit (GitStore.commit), all run while the
        # ref's lock is held: a build may keep here what cannot change while that lock is held.
        self.group: dict = {}

    def tree(self, path: str = "") -> Tree | None:
        oid = self.root
        if oid is None:
            return None
        tree = self.store.tree(oid)
        for part in [p for p in path.split("/") if p]:
            entry = tree.get(part)
            if entry is None or not entry.is_tree:
                return None
            tree = self.store.tree(entry.oid)
        return tree

    def entry(self, path: str) -> Entry | None:
        folder, _, name = path.rpartition("/")
        tree = self.tree(folder)
        return tree.get(name) if tree is not None else None

    def blob_id(self, path: str) -> str | None:
        entry = self.entry(path)
        return entry.oid if entry is not None and not entry.is_tree else None

    def read(self, path: str) -> bytes | None:
        oid = self.blob_id(path)
        if oid is None:
            return None
        found = self.store.git.read(oid)
        return found[1] if found else None

    def text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def walk(self, folder: str = "") -> Iterator[tuple[str, Entry]]:
        """Every non-tree entry under `folder`, depth first in git's order, with its full path."""
        tree = self.tree(folder)
        if tree is None:
            return
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        for entry in tree.entries():
            path = prefix + entry.name
            if entry.is_tree:
                yield from self.walk(path)
            else:
                yield path, entry


class GitStore:
    """One bare repository. Cheap to create; the parsed-tree cache is shared by threads."""

    def __init__(self, path: str | os.PathLike[str], committer: Identity = SYSTEM):
        self.path = os.path.abspath(os.fspath(path))
        self.git = Git(self.path)
        self.committer = committer.clean()
        self._trees = TreeCache()

    # ------------------------------------------------------------------ creation

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "HEAD")) and os.path.isdir(os.path.join(self.path, "objects"))

    def create(self) -> None:
        """Create the bare repository (no commit) if missing, and make sure its safety settings hold."""
        if not self.exists():
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            git.Repo.init(self.path, bare=True, mkdir=True, initial_branch="main").close()
        current = dict(
            line.split("=", 1)
            for line in self.git.out("config", "--local", "--list").splitlines()
            if "=" in line
        )
        for key, value in REPO_CONFIG.items():
            if current.get(key.lower()) != value:
                self.git.run("config", "--local", "--replace-all", key, value)
        if self.git.read_ref("HEAD") is None:
            self.git.run("symbolic-ref", "HEAD", names.MAIN_REF)

    def create_with(self, files: dict[str, str], message: str, author: Identity = SYSTEM) -> str | None:
        """Create the repository with a first commit on main, unless main already exists (idempotent)."""
        self.create()
        if self.tip(names.MAIN_REF):
            return None
        result = self.commit(names.MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in files.items()}, message),
                             author=author, create=True)
        return result.sha

    # ------------------------------------------------------------------ reading

    def tip(self, ref: str) -> str | None:
        return self.git.read_ref(ref)

    def commit_tree_id(self, commit: str) -> str:
        found = self.git.read(commit)
        if found is None or found[0] != "commit":
            raise InvalidName(f"There is no version {commit[:12]} in the repository.")
        return found[1][5:45].decode()

    def tree(self, oid: str) -> Tree:
        return self._trees.get(oid, self._load_tree)

    def _load_tree(self, oid: str) -> bytes:
        found = self.git.read(oid)
        if found is None or found[0] != "tree":
            raise GitError(["cat-file", oid], 1, "tree object missing")
        return found[1]

    def snapshot(self, commit: str | None) -> Snapshot:
        return Snapshot(self, commit)

    def resolve(self, rev: str) -> str | None:
        """A ref name (refs/...) or a full commit id -> the commit id, or None."""
        if rev.startswith("refs/"):
            return self.tip(rev)
        sha = names.sha(rev)
        found = self.git.read(sha)
        return sha if found and found[0] == "commit" else None

    def check_ref_format(self, ref: str) -> str:
        """git's own rules on top of names.checked_ref (check-ref-format takes no `--`; refs start with refs/)."""
        names.checked_ref(ref)
        if self.git.run("check-ref-format", ref, check=False).returncode != 0:
            raise InvalidName(f"git refuses the branch name {names.describe(ref)}.")
        return ref

    # ------------------------------------------------------------------ writing

    def commit(self, ref: str, build: Callable[[Snapshot], Edit | None], *, author: Identity,
               when: dt.datetime | None = None, create: bool = False,
               on_update: Callable[[str, Edit], None] | None = None) -> CommitResult:
        """Write one commit on `ref` built from its current tip by `build` (see the module docstring).

        `build` may run in another thread of this process (the group's leader), after the commits of
        saves that queued before it. `on_update(sha, edit)` runs while the ref's lock is still held,
        once the ref has moved, in commit order (and so possibly in the leader's thread too), so
        bookkeeping that must follow the ref (a database column holding the tip) is written in the
        same order as the commits.
        """
        names.checked_ref(ref)  # git's check-ref-format ran when the branch was created (create_ref)
        request = _Request(build, author.clean(), self.committer, when, create, on_update)
        queue = _queue(self.path, ref)
        with queue.lock:
            queue.waiting.append(request)
            lead = request.lead = not queue.leading
            queue.leading = True
        if not lead:
            self._await(queue, request)
            if request.done:
                return request.outcome()
        try:
            self._lead(ref, queue, request)
        finally:
            with queue.lock:
                if request in queue.waiting:  # the lock was not had: this save was never started
                    queue.waiting.remove(request)
                _hand_over(queue)
        return request.outcome()

    @staticmethod
    def _await(queue: _Queue, request: _Request) -> None:
        """Wait until a leader has applied `request`, or leadership is handed to it."""
        if request.wake.wait(WAIT_SECONDS):
            return
        with queue.lock:
            started = request.done or request.lead or request.taken
            if not started:
                queue.waiting.remove(request)
        if not started:
            raise Busy("Other saves kept the change busy for too long. Nothing was saved; please try again.")
        request.wake.wait()  # being applied (a group is bounded), led or done: its outcome is on the way

    def _lead(self, ref: str, queue: _Queue, mine: _Request) -> None:
        with self.git.locked(ref):
            while not mine.done:
                with queue.lock:
                    batch = queue.waiting[:MAX_BATCH]
                    del queue.waiting[:len(batch)]
                    for request in batch:
                        request.taken = True
                if not batch:
                    raise GitError(["commit", ref], 1, "a save was lost from the queue")  # never expected
                try:
                    again = self._apply(ref, batch)
                except BaseException as exc:
                    for request in batch:
                        if not request.done:
                            request.finish(error=exc if request is mine else Busy(
                                "Saving failed; nothing was saved. Please try again."))
                    raise
                with queue.lock:
                    for request in again:
                        request.taken = False
                    queue.waiting[:0] = again

    def _build_all(self, ref: str, batch: list[_Request], head: str | None, root: str | None,
                   ) -> tuple[list[tuple[_Request, CommitResult | Exception]], str | None]:
        """Build and write each save's commit on top of the one before; return each save's outcome
        and the last commit."""
        staged: list[tuple[_Request, CommitResult | Exception]] = []
        group: dict = {}
        for request in batch:
            request.attempts += 1
            if head is None and not request.create:
                staged.append((request, InvalidName(f"The branch {names.short_ref(ref)} does not exist.")))
                continue
            snap = Snapshot(self, head, root)
            snap.group = group
            try:
                result = request.build(snap)
                if result is None:
                    staged.append((request, CommitResult(head or "", head, ref, False, request.attempts, None)))
                    continue
                tree = self._write_files(snap, result.files)
                if tree == snap.root and head is not None:
                    staged.append((request, CommitResult(head, head, ref, False, request.attempts, result)))
                    continue
                sha = self._write_commit(tree, [head] if head else [], request.author, request.committer,
                                         result.message, request.when)
            except Exception as exc:  # noqa: BLE001 - this save's own outcome (Conflict, InvalidState, ...)
                staged.append((request, exc))
                continue
            staged.append((request, CommitResult(sha, head, ref, True, request.attempts, result)))
            head, root = sha, tree
        return staged, head

    def _apply(self, ref: str, batch: list[_Request]) -> list[_Request]:
        """Commit `batch` on `ref` one after the other and move the ref once. Returns the requests to
        apply again (the ref moved under us); the others are finished."""
        tip = self.tip(ref)
        head, root = tip, (self.commit_tree_id(tip) if tip else None)
        with self.git.staging():  # the group's objects reach the disk together, before the ref moves
            staged, head = self._build_all(ref, batch, head, root)
        crash_point("after-objects")
        if head != tip and not self.git.update_ref(ref, head, tip, f"dmaas: {len(batch)} saves"):
            if self.tip(ref) == tip:
                time.sleep(0.3)  # the ref did not move: its .lock file is held (or stale, see update_ref)
            again = [request for request in batch if request.attempts < MAX_ATTEMPTS]
            for request in batch:
                if request.attempts >= MAX_ATTEMPTS:
                    request.finish(error=Busy("The change kept moving while saving; nothing was saved. "
                                              "Please try again."))
            return again
        for request, outcome in staged:
            if isinstance(outcome, CommitResult) and outcome.changed and request.on_update is not None:
                try:
                    request.on_update(outcome.sha, outcome.edit)
                except Exception as exc:  # noqa: BLE001 - the commit stands; its caller hears what failed
                    outcome = exc
            if isinstance(outcome, Exception):
                request.finish(error=outcome)
            else:
                request.finish(result=outcome)
        return []

    def write_tree(self, root: str | None, files: dict[str, bytes | None]) -> str:
        """A new tree: `root` with files set or deleted (objects written, no commit)."""
        return self._write_files(Snapshot(self, None, root), files)

    def _write_files(self, snap: Snapshot, files: dict[str, bytes | None]) -> str:
        """Write the blobs and the trees along their paths; return the new root tree id."""
        changes: dict[str, tuple[bytes, str] | None] = {}
        blobs: dict[str, bytes] = {}
        for path, data in files.items():
            if data is None:
                if snap.entry(path) is not None:
                    changes[path] = None
                continue
            oid = object_id("blob", data)
            current = snap.entry(path)
            if current is not None and current.oid == oid and not current.is_tree:
                continue
            blobs[oid] = data
            changes[path] = (current.mode if current is not None and current.is_blob else BLOB_MODE, oid)
        if not changes:
            return snap.root or object_id("tree", b"")
        root, trees = edit(snap.root, changes, self.tree)
        written = self.git.write("blob", list(blobs.values()))
        if written != list(blobs):
            raise GitError(["write"], 1, "blob ids differ from the ones computed")
        written = self.git.write("tree", [body for _, _, body in trees])
        if written != [oid for oid, _, _ in trees]:
            raise GitError(["write"], 1, "tree ids differ from the ones computed")
        for oid, tree, _ in trees:
            self._trees.put(oid, tree)
        return root

    def commit_tree(self, tree: str, parents: list[str], author: Identity, message: str,
                    when: dt.datetime | None = None) -> str:
        """A commit of `tree` (which must exist) on `parents`, by `author`, committed by the portal."""
        names.sha(tree, "tree")
        found = self.git.read(tree)
        if found is None or found[0] != "tree":
            raise GitError(["commit-tree", tree], 128, f"{tree} is not a valid tree object")
        return self._write_commit(tree, parents, author.clean(), self.committer, message, when)

    def _write_commit(self, tree: str, parents: list[str], author: Identity, committer: Identity, message: str,
                      when: dt.datetime | None) -> str:
        """What `git commit-tree` writes: the author at `when` (default now, UTC), the committer now."""
        parents = [names.sha(parent) for parent in parents]
        author_line = signature(author.name, author.email, when or dt.datetime.now(dt.UTC))
        committer_line = signature(committer.name, committer.email, now())
        body = commit_body(tree, parents, author_line, committer_line, message.strip() + "\n")
        return self.git.write("commit", [body])[0]

    def create_ref(self, ref: str, commit: str) -> None:
        """Create a new branch at `commit`; InvalidName if it exists already."""
        self.check_ref_format(ref)
        with self.git.locked(ref):
            if not self.git.update_ref(ref, names.sha(commit), None, "dmaas: open change"):
                raise InvalidName(f"The branch {names.short_ref(ref)} exists already.")

    def move_ref(self, ref: str, new: str, old: str | None, reason: str) -> bool:
        """Compare-and-swap a ref to a commit made elsewhere (merges, fast-forwards). Caller holds the lock."""
        names.checked_ref(ref) if not ref.startswith("refs/dmaas/") else None
        return self.git.update_ref(ref, names.sha(new), old, reason)

    def set_internal_ref(self, ref: str, new: str | None) -> None:
        """refs/dmaas/* bookkeeping refs (fetched remote tips, backups); None deletes."""
        if not ref.startswith("refs/dmaas/") or ".." in ref:
            raise InvalidName(f"{ref!r} is not an internal ref")
        if new is None:
            self.git.run("update-ref", "-d", "--", ref, check=False)
        else:
            self.git.run("update-ref", "-m", "dmaas", "--", ref, names.sha(new))

    def locked(self, ref: str):
        return self.git.locked(ref)

    def close(self) -> None:
        self.git.close()

    # ------------------------------------------------------------------ graph

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = self.git.run("merge-base", "--is-ancestor", names.sha(ancestor), names.sha(descendant), check=False)
        return proc.returncode == 0

    def parents(self, sha: str) -> list[str]:
        """The commit's parents, first parent first."""
        out = self.git.run("rev-list", "--parents", "-n", "1", names.sha(sha), "--").stdout.decode().split()
        return out[1:]

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self.git.run("merge-base", names.sha(a), names.sha(b), check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def changed_paths(self, old: str | None, new: str) -> list[str]:
        """Paths that differ between two commits (added, modified, deleted), without rename detection."""
        if old is None:
            return [path for path, _ in self.snapshot(new).walk()]
        out = self.git.run("diff-tree", "-r", "-z", "--no-renames", "--name-only", names.sha(old), names.sha(new),
                           "--").stdout
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\x00") if p]

    def diff_status(self, old: str, new: str) -> list[tuple[str, str, str | None]]:
        """(status A/M/D/R, path, old path for renames) between two commits, with rename detection."""
        out = self.git.run("diff-tree", "-r", "-z", "-M", "--name-status", names.sha(old), names.sha(new),
                           "--").stdout.decode("utf-8", "surrogateescape").split("\x00")
        items, i = [], 0
        while i < len(out) and out[i]:
            status = out[i]
            if status[:1] in ("R", "C"):
                items.append((status[0], out[i + 2], out[i + 1]))
                i += 3
            else:
                items.append((status[:1], out[i + 1], None))
                i += 2
        return items

    def count_commits(self, base: str | None, tip: str) -> int:
        args = ["rev-list", "--count", names.sha(tip)] + ([f"^{names.sha(base)}"] if base else [])
        return int(self.git.out(*args, "--"))

    def fsck(self) -> tuple[bool, str]:
        proc = self.git.run("fsck", "--full", "--no-dangling", "--no-progress", check=False, timeout=600)
        text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        return proc.returncode == 0 and not text.strip(), text

    def maintain(self) -> None:
        """Pack loose objects now and then (`git gc --auto` does nothing until there are thousands)."""
        self.git.run("gc", "--auto", "--quiet", check=False, timeout=1800)


ZERO_SHA = ZERO


class _Request:
    """One save waiting in a ref's queue; `finish` publishes its outcome and wakes its thread."""

    __slots__ = ("build", "author", "committer", "when", "create", "on_update", "attempts", "lead", "taken",
                 "done", "result", "error", "wake")

    def __init__(self, build: Callable[[Snapshot], Edit | None], author: Identity, committer: Identity,
                 when: dt.datetime | None, create: bool, on_update: Callable[[str, Edit], None] | None):
        self.build, self.author, self.committer, self.when = build, author, committer, when
        self.create, self.on_update = create, on_update
        self.attempts = 0
        self.lead = False  # this thread applies the queue (set under the queue's lock)
        self.taken = False  # in a group being applied: no longer withdrawn on timeout
        self.done = False
        self.result: CommitResult | None = None
        self.error: BaseException | None = None
        self.wake = threading.Event()

    def finish(self, result: CommitResult | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.wake.set()

    def outcome(self) -> CommitResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Queue:
    """The saves waiting for one ref in this process, and whether a thread is applying them."""

    __slots__ = ("lock", "waiting", "leading")

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: list[_Request] = []
        self.leading = False


_queues: dict[tuple[str, str], _Queue] = {}
_queues_guard = threading.Lock()


def _forget_queues_after_fork() -> None:
    """A forked child (a prefork worker) starts with no queue: its parent's threads are not there."""
    global _queues_guard
    _queues.clear()
    _queues_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues_after_fork)


def _queue(path: str, ref: str) -> _Queue:
    with _queues_guard:
        queue = _queues.get((path, ref))
        if queue is None:
            queue = _queues[(path, ref)] = _Queue()
        return queue


def _hand_over(queue: _Queue) -> None:
    """The leader is leaving (called under the queue's lock): the oldest waiting save leads next."""
    for request in queue.waiting:
        if not request.done:
            request.lead = True
            request.wake.set()
            return
    queue.leading = False
