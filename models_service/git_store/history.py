"""Reading history and merging without a work tree: `git log` over paths and `git merge-tree --write-tree`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from . import names
from .store import GitStore

SEP = "\x1e\x1f"  # starts each commit in `git log` output; commit messages do not contain it
FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%s", "%b")


@dataclass
class LogEntry:
    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    authored_at: dt.datetime
    committer_name: str
    subject: str
    body: str
    files: list[tuple[str, str, str | None]] = field(default_factory=list)  # (status, path, old path)

    def as_dict(self) -> dict:
        return {
            "sha": self.sha, "author": self.author_name, "email": self.author_email,
            "at": self.authored_at.isoformat(), "message": self.subject,
        }


def log(store: GitStore, rev: str, paths: list[str] | None = None, *, follow: bool = False,
        limit: int | None = 200, name_status: bool = False, exclude: str | None = None,
        first_parent: bool = False) -> list[LogEntry]:
    """Commits reachable from `rev` (a commit id), newest first, touching `paths` if given.

    `follow` tracks one file across renames (as `git log --follow`); `exclude` hides commits
    reachable from that commit (log base..rev).
    """
    args = ["log", "-z", f"--format={SEP}" + "%x00".join(FIELDS) + "%x00"]
    if limit:
        args.append(f"-n{int(limit)}")
    if name_status or follow:
        args += ["--name-status", "-M"]
    if follow:
        args.append("--follow")
    if first_parent:
        args.append("--first-parent")
    args.append(names.sha(rev))
    if exclude:
        args.append(f"^{names.sha(exclude)}")
    args.append("--")
    args += list(paths or [])
    raw = store.git.run(*args).stdout.decode("utf-8", "replace")
    entries = []
    for chunk in raw.split(SEP)[1:]:
        parts = chunk.split("\x00")
        sha, parents, an, ae, at, cn, subject, body = parts[:8]
        rest = [p.strip("\n") for p in parts[8:]]
        rest = [p for p in rest if p != ""]
        files: list[tuple[str, str, str | None]] = []
        i = 0
        while i < len(rest):
            status = rest[i]
            if status[:1] in ("R", "C") and i + 2 < len(rest) + 1:
                files.append((status[0], rest[i + 2], rest[i + 1]))
                i += 3
            else:
                files.append((status[:1], rest[i + 1] if i + 1 < len(rest) else "", None))
                i += 2
        entries.append(LogEntry(sha, parents.split(), an, ae, dt.datetime.fromisoformat(at), cn,
                                subject, body.strip(), files))
    return entries


# --------------------------------------------------------------------------- merging


@dataclass
class ConflictFile:
    path: str
    stages: dict[int, tuple[str, str]]  # 1 = merge base, 2 = ours, 3 = theirs: (mode, blob id)


@dataclass
class MergeOutcome:
    tree: str  # the merged tree; conflicted files hold git's conflict markers until resolved
    base: str | None
    conflicts: list[ConflictFile]

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge(store: GitStore, ours: str, theirs: str) -> MergeOutcome:
    """A three-way merge of two commits with `git merge-tree --write-tree` (no work tree, no index)."""
    proc = store.git.run("merge-tree", "--write-tree", "-z", "--no-messages", "--end-of-options",
                         names.sha(ours), names.sha(theirs), check=False)
    if proc.returncode not in (0, 1):
        from ._git import GitError

        raise GitError(["merge-tree"], proc.returncode, proc.stderr.decode("utf-8", "replace"))
    parts = proc.stdout.decode("utf-8", "surrogateescape").split("\x00")
    tree = parts[0].strip()
    conflicts: dict[str, ConflictFile] = {}
    for item in parts[1:]:
        if not item:
            break
        info, _, path = item.partition("\t")
        mode, oid, stage = info.split()
        conflicts.setdefault(path, ConflictFile(path, {})).stages[int(stage)] = (mode, oid)
    return MergeOutcome(tree=names.sha(tree, "tree"), base=store.merge_base(ours, theirs),
                        conflicts=list(conflicts.values()))
