"""Git tree objects parsed and edited in memory, so a save never walks or rewrites a work tree or an index.

A save touches one or two files: the trees along their paths are rebuilt here (the changed
directory and its parents; a flat models/ of 20,000 entries is parsed once and kept in a small
cache keyed by the tree's id, since trees never change), their ids computed with SHA-1 as git does,
and only those new trees are written. Plain Python; the store reads and writes the objects.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .objects import object_id

ENTRY_RE = re.compile(rb"([0-7]{5,6}) ([^\x00]+)\x00(.{20})", re.S)
TREE_MODE = b"40000"
BLOB_MODE = b"100644"
EXEC_MODE = b"100755"
LINK_MODE = b"120000"
SUBMODULE_MODE = b"160000"


@dataclass(frozen=True)
class Entry:
    mode: bytes
    name: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == TREE_MODE

    @property
    def is_blob(self) -> bool:
        return self.mode in (BLOB_MODE, EXEC_MODE)


def sort_key(name: bytes, mode: bytes) -> bytes:
    """git orders tree entries by name, comparing a directory as if its name ended in '/'."""
    return name + b"/" if mode == TREE_MODE else name


class Tree:
    """The entries of one tree object, in git's order. Immutable once built; `edited` makes a new one."""

    __slots__ = ("keys", "raw", "names")

    def __init__(self, keys: list[bytes], raw: dict[bytes, bytes], names: dict[str, bytes]):
        self.keys = keys  # sort keys in git order
        self.raw = raw  # sort key -> the entry's bytes: b"<mode> <name>\0<20-byte id>"
        self.names = names  # name -> sort key

    @classmethod
    def parse(cls, body: bytes) -> Tree:
        keys: list[bytes] = []
        raw: dict[bytes, bytes] = {}
        names: dict[str, bytes] = {}
        pos = 0
        for match in ENTRY_RE.finditer(body):
            if match.start() != pos:
                raise ValueError("malformed tree object")
            pos = match.end()
            mode, name = match.group(1), match.group(2)
            key = sort_key(name, mode)
            keys.append(key)
            raw[key] = match.group(0)
            names[name.decode("utf-8", "surrogateescape")] = key
        if pos != len(body):
            raise ValueError("malformed tree object")
        return cls(keys, raw, names)

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, name: str) -> Entry | None:
        key = self.names.get(name)
        return None if key is None else _entry(self.raw[key])

    def entries(self) -> list[Entry]:
        return [_entry(self.raw[k]) for k in self.keys]

    def subtree_names(self) -> list[str]:
        """Names of the folders in this tree (cheap: no entry is decoded)."""
        return [k[:-1].decode("utf-8", "surrogateescape") for k in self.keys if k.endswith(b"/")]

    def file_names(self) -> list[str]:
        return [k.decode("utf-8", "surrogateescape") for k in self.keys if not k.endswith(b"/")]

    def body(self) -> bytes:
        return b"".join(self.raw[k] for k in self.keys)

    def edited(self, changes: dict[str, Entry | None]) -> Tree:
        """A copy with entries set (Entry) or removed (None)."""
        keys, raw, names = list(self.keys), dict(self.raw), dict(self.names)
        for name, entry in changes.items():
            old = names.pop(name, None)
            if old is not None:
                del raw[old]
                keys.pop(bisect.bisect_left(keys, old))
            if entry is not None:
                bname = name.encode("utf-8", "surrogateescape")
                key = sort_key(bname, entry.mode)
                raw[key] = entry.mode + b" " + bname + b"\x00" + bytes.fromhex(entry.oid)
                names[name] = key
                bisect.insort(keys, key)
        return Tree(keys, raw, names)


def _entry(raw: bytes) -> Entry:
    head, _, oid = raw.partition(b"\x00")
    mode, _, name = head.partition(b" ")
    return Entry(mode, name.decode("utf-8", "surrogateescape"), oid.hex())


class TreeCache:
    """A small cache of parsed trees by id, bounded by the total number of entries held."""

    def __init__(self, max_entries: int = 250_000):
        self.max_entries = max_entries
        self._trees: OrderedDict[str, Tree] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, oid: str, load: Callable[[str], bytes]) -> Tree:
        with self._lock:
            tree = self._trees.get(oid)
            if tree is not None:
                self._trees.move_to_end(oid)
                return tree
        tree = Tree.parse(load(oid))
        self.put(oid, tree)
        return tree

    def put(self, oid: str, tree: Tree) -> None:
        with self._lock:
            if oid in self._trees:
                return
            self._trees[oid] = tree
            self._size += len(tree)
            while self._size > self.max_entries and len(self._trees) > 1:
                _, old = self._trees.popitem(last=False)
                self._size -= len(old)


def edit(root: str | None, changes: dict[str, tuple[bytes, str] | None], load: Callable[[str], Tree],
         ) -> tuple[str, list[tuple[str, Tree, bytes]]]:
    """Apply {path: (mode, blob id) | None} to the tree `root` (None: empty) without writing anything.

    Returns the new root id and the new trees [(id, tree, body)], deepest first, for the caller to write.
    A directory left empty disappears, as in git.
    """
    new_trees: list[tuple[str, Tree, bytes]] = []

    def apply(oid: str | None, items: dict[str, tuple[bytes, str] | None]) -> str | None:
        tree = load(oid) if oid else Tree([], {}, {})
        here: dict[str, Entry | None] = {}
        below: dict[str, dict[str, tuple[bytes, str] | None]] = {}
        for path, value in items.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = value
            else:
                here[head] = Entry(value[0], head, value[1]) if value else None
        for name, sub in below.items():
            current = tree.get(name)
            if name in here:
                raise ValueError(f"{name} is both a file and a folder in one edit")
            sub_oid = apply(current.oid if current and current.is_tree else None, sub)
            here[name] = Entry(TREE_MODE, name, sub_oid) if sub_oid else None
        tree = tree.edited(here)
        if not len(tree):
            return None
        body = tree.body()
        new_oid = object_id("tree", body)
        new_trees.append((new_oid, tree, body))
        return new_oid

    new_root = apply(root, changes)
    if new_root is None:  # an empty root tree is allowed in git
        empty = Tree([], {}, {})
        new_root = object_id("tree", b"")
        new_trees.append((new_root, empty, b""))
    return new_root, new_trees
