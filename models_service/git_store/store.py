"""The bare data-models repository: snapshots to read, commits by compare-and-swap to write.

A write (`GitStore.commit`) never touches a work tree or the shared index:

1. under the ref's lock, read the ref's tip and give a `Snapshot` of it to the caller's `build`
   function, which returns the files to write (or raises Conflict);
2. hash the new blobs, rebuild only the trees along the changed paths (in memory, see trees.py),
   write those objects with `git hash-object -w` (fsynced: core.fsync covers committed objects;
   a long-running process, see pipes.py);
3. `git commit-tree` with the analyst as author and the portal as committer;
4. `update <ref> <new> <old>` through `git update-ref --stdin`: a compare-and-swap (one transaction,
   see pipes.py; `git update-ref -- <ref> <new> <old>` for the same effect). If the ref moved meanwhile (a
   writer that did not hold our lock), start again from 1 on the new tip: `build` sees the new
   files and decides whether the save still applies or is now a conflict. Nothing is overwritten.

A process killed anywhere in 2-3 leaves unreferenced objects (harmless, `git gc` prunes them) and
the ref at its old commit; killed after 4, at the new one.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import git  # GitPython: imported only inside models_service.git_store

from ..errors import Busy, InvalidName
from . import names
from ._git import ZERO, Git, GitError, crash_point, object_id
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
        self.store = store
        self.commit = commit
        self.root = store.commit_tree_id(commit) if commit else root

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

        `on_update(sha, edit)` runs while the ref's lock is still held, so bookkeeping that must follow
        the ref (a database column holding the tip) is written in the same order as the commits.
        """
        names.checked_ref(ref)  # git's check-ref-format ran when the branch was created (create_ref)
        author = author.clean()
        with self.git.locked(ref):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                tip = self.tip(ref)
                if tip is None and not create:
                    raise InvalidName(f"The branch {names.short_ref(ref)} does not exist.")
                snap = self.snapshot(tip)
                result = build(snap)
                if result is None:
                    return CommitResult(tip or "", tip, ref, False, attempt, None)
                tree = self._write_files(snap, result.files)
                if tree == snap.root and tip is not None:
                    return CommitResult(tip, tip, ref, False, attempt, result)
                sha = self.commit_tree(tree, [tip] if tip else [], author, result.message, when)
                if self.git.update_ref(ref, sha, tip, f"dmaas: {result.message.splitlines()[0]}"):
                    if on_update is not None:
                        on_update(sha, result)
                    return CommitResult(sha, tip, ref, True, attempt, result)
                if self.tip(ref) == tip:
                    time.sleep(0.3)  # the ref did not move: its .lock file is held (or stale, see update_ref)
        raise Busy("The change kept moving while saving; nothing was saved. Please try again.")

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
            raise GitError(["hash-object"], 1, "blob ids differ from the ones computed")
        written = self.git.write("tree", [body for _, _, body in trees])
        if written != [oid for oid, _, _ in trees]:
            raise GitError(["hash-object"], 1, "tree ids differ from the ones computed")
        for oid, tree, _ in trees:
            self._trees.put(oid, tree)
        crash_point("after-objects")
        return root

    def commit_tree(self, tree: str, parents: list[str], author: Identity, message: str,
                    when: dt.datetime | None = None) -> str:
        author = author.clean()
        when = when or dt.datetime.now(dt.UTC)
        stamp = f"@{int(when.timestamp())} {when.strftime('%z') or '+0000'}"
        env = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email, "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_NAME": self.committer.name, "GIT_COMMITTER_EMAIL": self.committer.email,
        }
        args = ["commit-tree", names.sha(tree, "tree")]
        for parent in parents:
            args += ["-p", names.sha(parent)]
        message = message.strip() + "\n"
        return self.git.out(*args, "-F", "-", input=message.encode("utf-8"), env=env)

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
