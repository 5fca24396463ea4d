"""Reading the repository for pages and the API: a model at a commit, the project's files, a change's
diff against main, a model's history. Straight from git (fast enough per request: one model, one
diff); lists and search over all models come from the index (models_service.index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import access, model_files
from .changes import get_change
from .errors import InvalidName, ModelVersion, NotFound
from .git_store import MAIN_REF, GitStore, Snapshot, log, names
from .model_files import ModelDiff, model_diff
from .models import ChangeRequest
from .project_files import ProjectFileError, parse_properties
from .repo import get_store


def _rev(user: Any, store: GitStore, change: ChangeRequest | int | None, at: str | None) -> str:
    """The commit to read: `at` (a commit id), else the change's tip, else main's."""
    access.require(user, "catalog.view")
    if at is not None:
        sha = store.resolve(names.sha(at))
        if sha is None:
            raise NotFound(f"There is no version {at[:12]} in the repository.")
        return sha
    if change is not None:
        change = get_change(user, change.pk if isinstance(change, ChangeRequest) else change)
        tip = store.tip(change.branch) or change.head_sha
        if not tip:
            raise NotFound("This change has no branch in the repository.")
        return tip
    tip = store.tip(MAIN_REF)
    if tip is None:
        raise NotFound("The repository has no main branch yet.")
    return tip


def get_model(user: Any, name: str, *, change: ChangeRequest | int | None = None, at: str | None = None) -> ModelVersion:
    """A model's SQL and properties at a commit, on a change, or on main (the editor's load)."""
    if not (isinstance(name, str) and names.is_identifier(name)):
        names.model_name(name)  # raises, saying why
    store = get_store()
    rev = _rev(user, store, change, at)
    found = model_files.version(store.snapshot(rev), name)
    if found is None:
        raise NotFound(f"There is no model {name} here.")
    return found


def read_file(user: Any, path: str, *, change: ChangeRequest | int | None = None, at: str | None = None) -> str:
    """Any file of the project (a macro, a seed, dbt_project.yml) at a commit, on a change, or on main."""
    if (not isinstance(path, str) or not path or not path.isascii() or path.startswith(("/", "-"))
            or "\x00" in path or "\\" in path or any(p in ("", ".", "..") for p in path.split("/"))
            or any(p.lower().startswith(".git") for p in path.split("/"))):
        raise InvalidName(f"The path {names.describe(path)} is not a file of the project.", field="path")
    store = get_store()
    rev = _rev(user, store, change, at)
    text = store.snapshot(rev).text(path)
    if text is None:
        raise NotFound(f"There is no file {path} here.")
    return text


@dataclass
class ProjectListing:
    commit: str
    models: list[dict[str, str]] = field(default_factory=list)  # {name, path}
    seeds: list[dict[str, str]] = field(default_factory=list)
    macros: list[dict[str, str]] = field(default_factory=list)
    tests: list[dict[str, str]] = field(default_factory=list)
    sources: list[dict[str, str]] = field(default_factory=list)  # {name: source.table, path}
    problems: list[str] = field(default_factory=list)  # files that could not be read, in plain words


def list_project(user: Any, *, change: ChangeRequest | int | None = None, at: str | None = None) -> ProjectListing:
    """Models, seeds, macros, singular tests and sources at a commit (straight from git)."""
    store = get_store()
    rev = _rev(user, store, change, at)
    return project_listing(store.snapshot(rev))


def project_listing(snap: Snapshot) -> ProjectListing:
    out = ProjectListing(commit=snap.commit or "")
    for path, entry in snap.walk():
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        top = path.split("/", 1)[0]
        item = {"name": stem, "path": path}
        if top == "models" and path.endswith(".sql"):
            out.models.append(item)
        elif top == "seeds" and path.endswith(".csv"):
            out.seeds.append(item)
        elif top == "macros" and path.endswith(".sql"):
            out.macros.append(item)
        elif top == "tests" and path.endswith(".sql"):
            out.tests.append(item)
        elif top == "models" and path.endswith((".yml", ".yaml")):
            data = snap.store.git.read(entry.oid)
            if data and b"sources:" in data[1]:
                try:
                    props = parse_properties(data[1].decode("utf-8", "replace"), path)
                except ProjectFileError as exc:
                    out.problems.append(str(exc))
                    continue
                out.sources += [{"name": f"{s.name}.{t.name}", "path": path} for s in props.sources for t in s.tables]
    for key in ("models", "seeds", "macros", "tests", "sources"):
        getattr(out, key).sort(key=lambda i: i["name"])
    return out


def change_diff(user: Any, change: ChangeRequest | int) -> list[ModelDiff]:
    """Each model the change adds, edits, renames or deletes, against where it left main (its merge base)."""
    store = get_store()
    head = _rev(user, store, change, None)
    main = store.tip(MAIN_REF)
    base = store.merge_base(main, head) if main else None
    if base is None or base == head:
        return []
    return diff_between(store, base, head)


def diff_between(store: GitStore, old: str, new: str) -> list[ModelDiff]:
    old_snap, new_snap = store.snapshot(old), store.snapshot(new)
    status = store.diff_status(old, new)
    renamed = {p.rsplit("/", 1)[-1][:-4]: o.rsplit("/", 1)[-1][:-4]
               for s, p, o in status if s == "R" and p.endswith(".sql") and o and o.endswith(".sql")}
    paths = [p for _, p, _ in status] + [o for _, _, o in status if o]
    affected = model_files.affected_models(old_snap, new_snap, paths)
    diffs = []
    for name in sorted(affected - set(renamed.values())):
        old_name = renamed.get(name)
        before = model_files.version(old_snap, old_name or name)
        after = model_files.version(new_snap, name)
        d = model_diff(name, before, after, old_name=old_name if before and after else None)
        if d is not None:
            diffs.append(d)
    return diffs


@dataclass
class HistoryEntry:
    sha: str
    author: str
    email: str
    at: Any  # aware datetime
    message: str
    parts: list[str]  # what changed: "SQL", "properties", "created", "deleted", "renamed from x"
    name: str  # the model's name in that commit

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def model_history(user: Any, name: str, *, change: ChangeRequest | int | None = None,
                  limit: int = 50) -> list[HistoryEntry]:
    """Who changed a model, when and with which message, newest first, following renames."""
    store = get_store()
    rev = _rev(user, store, change, None)
    current = model_files.version(store.snapshot(rev), name)
    if current is None:
        raise NotFound(f"There is no model {name} here.")
    sql_log = log(store, rev, [current.sql_path], follow=True, limit=limit)
    name_at: dict[str, str] = {}
    yml_paths = {current.yml_path} if current.yml_path else set()
    path = current.sql_path
    for entry in sql_log:
        for status, new_path, old_path in entry.files:
            if new_path.endswith(".sql"):
                path = new_path
                name_at[entry.sha] = new_path.rsplit("/", 1)[-1][:-4]
                if status == "R" and old_path:
                    yml_paths.add(f"{old_path[:-4]}.yml")
        yml_paths.add(f"{path[:-4]}.yml")
    sql_paths = {p for e in sql_log for _, new, old in e.files for p in (new, old) if p and p.endswith(".sql")}
    # One walk over every path the model has had gives git's order (a child always before its parent).
    candidates = log(store, rev, sorted(sql_paths | yml_paths | {current.sql_path}), limit=limit * 3)
    # A commit that touched only the yml carries the name set by the latest rename before it.
    current_name = name
    for entry in reversed(candidates):
        current_name = name_at.setdefault(entry.sha, current_name)
    out: list[HistoryEntry] = []
    for entry in candidates:
        now_name = name_at.get(entry.sha, name)
        parts = _what_changed(store, entry.sha, entry.parents[:1], now_name, name_at)
        if parts:
            out.append(HistoryEntry(entry.sha, entry.author_name, entry.author_email, entry.authored_at,
                                    entry.subject, parts, now_name))
        if len(out) >= limit:
            break
    return out


def _what_changed(store: GitStore, sha: str, parents: list[str], name: str, name_at: dict[str, str]) -> list[str]:
    after = model_files.version(store.snapshot(sha), name)
    before = None
    old_name = name
    if parents:
        parent_snap = store.snapshot(parents[0])
        before = model_files.version(parent_snap, name)
        if before is None:
            old = _renamed_from(store, parents[0], sha, name)
            if old:
                old_name, before = old, model_files.version(parent_snap, old)
    if after is None and before is None:
        return []
    if before is None:
        return ["created"]
    if after is None:
        return ["deleted"]
    parts = []
    if old_name != name:
        parts.append(f"renamed from {old_name}")
    if before.sql_blob != after.sql_blob:
        parts.append("SQL")
    if before.spec.to_yaml() | {"name": name} != after.spec.to_yaml():
        parts.append("properties")
    return parts


def _renamed_from(store: GitStore, parent: str, sha: str, name: str) -> str | None:
    for status, path, old in store.diff_status(parent, sha):
        if status == "R" and path.endswith(f"/{name}.sql") and old and old.endswith(".sql"):
            return old.rsplit("/", 1)[-1][:-4]
    return None


def version_diff(user: Any, name: str, sha: str) -> ModelDiff | None:
    """What one commit changed in a model (the history page's diff), against its first parent."""
    store = get_store()
    rev = _rev(user, store, None, sha)
    entry = log(store, rev, limit=1)[0]
    after = model_files.version(store.snapshot(rev), name)
    before, old_name = None, None
    if entry.parents:
        parent_snap = store.snapshot(entry.parents[0])
        before = model_files.version(parent_snap, name)
        if before is None and (old_name := _renamed_from(store, entry.parents[0], rev, name)):
            before = model_files.version(parent_snap, old_name)
    return model_diff(name, before, after, old_name=old_name)


def change_commits(user: Any, change: ChangeRequest | int, limit: int = 200) -> list[dict[str, Any]]:
    """The commits on a change since it left main: who saved what, when."""
    store = get_store()
    head = _rev(user, store, change, None)
    main = store.tip(MAIN_REF)
    return [e.as_dict() for e in log(store, head, exclude=main, limit=limit)]
