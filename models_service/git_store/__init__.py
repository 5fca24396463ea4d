"""The data-models git repository. This package is the only code that imports GitPython or runs git.

- names:   what may reach git (model names, paths under models/, generated branch names, URLs)
- store:   the bare repository, snapshots of commits, writes by compare-and-swap (`GitStore.commit`)
- trees:   tree objects parsed and edited in memory (a save rewrites only the trees on its paths)
- objects: loose objects (blobs, trees, commits) written without a git process, fsynced before named
- pipes:   the long-running `update-ref --stdin` that moves refs by compare-and-swap
- history: `git log` over paths, three-way merges with `git merge-tree --write-tree`
- remote:  fetch and push over file, ssh and https only
"""

from ._git import GitError
from .history import ConflictFile, LogEntry, MergeOutcome, log, merge
from .names import MAIN_REF
from .store import SYSTEM, CommitResult, Edit, GitStore, Identity, Snapshot

__all__ = [
    "MAIN_REF", "SYSTEM", "CommitResult", "ConflictFile", "Edit", "GitError", "GitStore", "Identity",
    "LogEntry", "MergeOutcome", "Snapshot", "log", "merge",
]
