"""Change requests: verb-first service functions that pages, the API and workers all call.

Each takes the acting user first, checks permission here (models_service.access), and raises the
typed errors of models_service.errors (NotFound, InvalidName, InvalidInput, InvalidState, Conflict,
Busy) or Django's PermissionDenied, with messages meant for the analyst. Every write is one git
commit on the change's branch, authored by the analyst, and one audit entry with its sha.

Do not call these inside `transaction.atomic()`: a save waits for the branch's lock, and on SQLite an
open write transaction would make the lock's holder wait for the database in turn.

State moves are compare-and-set (`filter(pk=…, state__in=…).update(…)`, count checked) taken under
the branch's lock, so a merge and a withdraw, or two submits, never both win.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import access, audit, index, model_files, signals, sync
from .errors import Conflict, InvalidInput, InvalidState, ModelVersion, NotFound
from .git_store import MAIN_REF, Edit, GitStore, Snapshot, log, names
from .models import ChangeRequest, ChangeState, IndexedNode
from .models.changes import OPEN_STATES
from .project_files import ColumnSpec, ModelSpec
from .repo import get_store, identity

MAX_SQL_BYTES = 256 * 1024
MAX_TITLE = 200
S = ChangeState


@dataclass
class SaveResult:
    """What a save, rename or delete did. `changed` is False when the files were already so (no commit)."""

    sha: str  # the change's head after the write
    change: ChangeRequest
    message: str
    changed: bool
    created: bool = False  # a new model
    opened: bool = False  # a change request was opened for this save
    attempts: int = 1  # > 1: re-applied on a tip that moved meanwhile
    sql_path: str = ""
    yml_path: str = ""


# --------------------------------------------------------------------------- seeing changes


def can_view(user: Any, change: ChangeRequest) -> bool:
    """Drafts: their author and admins. Other states: also reviewers (change.view_all)."""
    if not access.roles_of(user):
        return False
    if change.author_id == user.pk or access.has_role(user, access.Role.ADMIN):
        return True
    return change.state != S.DRAFT and access.can(user, "change.view_all")


def visible_changes(user: Any) -> QuerySet[ChangeRequest]:
    """The change requests a user may list (drafts of others never appear)."""
    qs = ChangeRequest.objects.select_related("author")
    if not access.roles_of(user):
        return qs.none()
    if access.has_role(user, access.Role.ADMIN):
        return qs
    if access.can(user, "change.view_all"):
        return qs.filter(Q(author=user) | ~Q(state=S.DRAFT))
    return qs.filter(author=user)


def get_change(user: Any, change_id: Any) -> ChangeRequest:
    """A change the user may see, or NotFound (also when it exists but is someone else's draft)."""
    try:
        change = ChangeRequest.objects.select_related("author").get(pk=int(change_id))
    except (ChangeRequest.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no change request {change_id}.") from None
    if not can_view(user, change):
        raise NotFound(f"There is no change request {change_id}.")
    return change


def _fresh(user: Any, change: ChangeRequest | int) -> ChangeRequest:
    return get_change(user, change.pk if isinstance(change, ChangeRequest) else change)


def _require_edit(user: Any, change: ChangeRequest) -> None:
    access.require(user, "model.edit", change)
    if change.state not in OPEN_STATES:
        raise InvalidState(f"This change is {change.get_state_display().lower()}; open a new change to edit models.")


# --------------------------------------------------------------------------- opening


def _clean_title(title: Any) -> str:
    text = " ".join(str(title or "").split())
    if not text:
        raise InvalidInput("Give the change a title, for example: Add monthly revenue.")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"The title is {len(text)} characters long; keep it to {MAX_TITLE}.")
    return text


def open_change(user: Any, title: str, description: str = "", *, source: str = "page") -> ChangeRequest:
    """A new draft change request with its branch cut from main."""
    access.require(user, "model.edit")
    title = _clean_title(title)
    store = get_store()
    main = store.tip(MAIN_REF) or ""
    with transaction.atomic():
        change = ChangeRequest.objects.create(title=title, description=str(description or ""), author=user,
                                              base_sha=main, head_sha=main)
        change.branch = store.check_ref_format(names.change_ref(change.pk, title))
        ChangeRequest.objects.filter(pk=change.pk).update(branch=change.branch)
    try:
        _keep_orphan(store, change.branch)
        store.create_ref(change.branch, main)
    except Exception:
        ChangeRequest.objects.filter(pk=change.pk).delete()
        raise
    audit.record(user, "change.open", change, source=source, sha=main, details={"branch": change.branch_name})
    sync.enqueue_push(change.branch, main)
    return change


def _keep_orphan(store: GitStore, branch: str) -> None:
    """A branch a new change's name would take belongs to no change request (its row was lost: a
    restored database, a rolled-back transaction). Keep its commits under refs/dmaas/orphans/ and
    free the name, so nothing saved is lost and the new change still opens."""
    tip = store.tip(branch)
    if tip is None:
        return
    with store.locked(branch):
        tip = store.tip(branch)
        if tip is None:
            return
        store.set_internal_ref(f"refs/dmaas/orphans/{names.short_ref(branch)}-{tip[:12]}", tip)
        store.git.run("update-ref", "-d", "--", branch, tip, check=False)


def _ensure_branch(store: GitStore, change: ChangeRequest) -> None:
    """Recreate a branch lost between the database row and the ref (a crash while opening)."""
    if store.tip(change.branch) is None:
        start = change.head_sha or change.base_sha or store.tip(MAIN_REF)
        store.git.update_ref(change.branch, names.sha(start), None, "dmaas: restore change branch")


# --------------------------------------------------------------------------- writing models


def _hints(change: ChangeRequest, name: str) -> tuple[str, ...]:
    rows = IndexedNode.objects.filter(ref__in=[change.branch_name, index.MAIN], kind="model", name=name)
    return tuple(p for row in rows for p in (row.path, row.yml_path) if p)


def _check_spec(name: str, spec: ModelSpec) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        raise InvalidInput("The model's properties must be given as a ModelSpec.")
    spec = replace(spec, name=name)
    seen = set()
    for col in spec.columns:
        if not isinstance(col, ColumnSpec) or not isinstance(col.name, str) or not col.name.strip():
            raise InvalidInput("Every column needs a name.")
        if len(col.name) > 200 or any(ord(c) < 32 for c in col.name):
            raise InvalidInput(f"The column name {names.describe(col.name)} is too long or has control characters.")
        if col.name in seen:
            raise InvalidInput(f"The column {col.name} is listed twice.")
        seen.add(col.name)
    return spec


def _write(user: Any, change: ChangeRequest | None, base_sha: str | None, models: list[str],
           make: Callable[[Snapshot, GitStore, ChangeRequest, dict[str, tuple[str, ...]]], Edit], *,
           action: str, source: str, open_title: str) -> SaveResult:
    """The common path of save, rename and delete: open a change if needed, commit, then bookkeeping."""
    access.require(user, "model.edit")
    if base_sha is not None:
        names.sha(base_sha, "base version")
    store = get_store()
    if base_sha is not None and store.resolve(base_sha) is None:
        raise NotFound(f"The version {base_sha[:12]} you started from is not in the repository.")
    opened = False
    if change is None:
        change = open_change(user, open_title, source=source)
        opened = True
    change = _fresh(user, change)
    _require_edit(user, change)
    _ensure_branch(store, change)
    hints = {name: _hints(change, name) for name in models}  # read before taking the branch's lock

    def build(snap: Snapshot) -> Edit:
        # Read once per group commit: a change is closed (merged, abandoned) only under its branch's
        # lock, which the group's builds all run under.
        key = ("change open", change.pk)
        if key not in snap.group:
            state = ChangeRequest.objects.filter(pk=change.pk).values_list("state", flat=True).first()
            snap.group[key] = state in OPEN_STATES
        if not snap.group[key]:
            raise InvalidState("This change was closed while saving; nothing was saved.")
        return make(snap, store, change, hints)

    try:
        result = store.commit(change.branch, build, author=identity(user))
    except Exception:
        if opened:
            _discard_empty(store, change)
        raise
    edit = result.edit
    saved = SaveResult(sha=result.sha, change=change, message=edit.message if edit else "", changed=result.changed,
                       opened=opened, attempts=result.attempts, **(edit.data.get("result", {}) if edit else {}))
    if result.changed:
        _bookkeep(store, _Landed(user, change, action, source, result.sha, result.parent, models,
                                 {"models": models, "message": saved.message, "attempts": result.attempts}))
    return saved


class _Landed:
    """A save whose commit is on the branch, waiting for its rows: head_sha, audit entry, index."""

    __slots__ = ("user", "change", "action", "source", "sha", "parent", "models", "details", "done", "error",
                 "lead", "wake")

    def __init__(self, user: Any, change: ChangeRequest, action: str, source: str, sha: str, parent: str | None,
                 models: list[str], details: dict[str, Any]):
        self.user, self.change, self.action, self.source = user, change, action, source
        self.sha, self.parent, self.models, self.details = sha, parent, models, details
        self.done, self.error, self.lead = False, None, False
        self.wake = threading.Event()


class _Books:
    """Saves of one change waiting for their bookkeeping in this process (see `_bookkeep`)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: list[_Landed] = []
        self.leading = False


_books: dict[tuple[str, int], _Books] = collections.defaultdict(_Books)
_books_guard = threading.Lock()


def _forget_books_after_fork() -> None:
    """A forked child (a prefork worker) starts with no queue: its parent's threads are not there."""
    global _books_guard
    _books.clear()
    _books_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_books_after_fork)


def _bookkeep(store: GitStore, landed: _Landed) -> None:
    """Record a landed save in the database: head_sha, its audit entry, the index rows of its models.

    Saves of one change land in groups (the git store's group commit) and would then all queue for
    the database's write lock (SQLite polls for it, sleeping up to 100 ms between tries). Instead
    they queue here: one thread writes the rows of every save waiting at that moment in one
    transaction (head_sha once, at the branch's tip; an audit entry per save, in commit order; the
    index rows of all their models, read at that tip) while the others wait for it, as they would
    have waited for the lock. A failure reaches every save of that transaction.
    """
    with _books_guard:
        books = _books[(store.path, landed.change.pk)]
    with books.lock:
        books.waiting.append(landed)
        landed.lead = not books.leading
        books.leading = True
    if not landed.lead:
        landed.wake.wait()
    try:
        while not landed.done:
            with books.lock:
                batch, books.waiting = books.waiting, []
            try:
                _record(store, _in_commit_order(batch))
            except Exception as exc:
                for item in batch:
                    item.done, item.error = True, exc
                    item.wake.set()
                raise
            for item in batch:
                item.done = True
                item.wake.set()
    finally:
        if landed.lead:
            with books.lock:
                if books.waiting:
                    books.waiting[0].lead = True
                    books.waiting[0].wake.set()
                else:
                    books.leading = False
    if landed.error is not None:
        raise landed.error


def _in_commit_order(batch: list[_Landed]) -> list[_Landed]:
    """Arrival order, except that a save follows the save whose commit is its parent."""
    by_parent = {item.parent: item for item in batch}
    shas = {item.sha for item in batch}
    ordered: dict[int, _Landed] = {}
    for item in batch:
        if item.parent in shas:
            continue  # placed after its parent
        while item is not None and id(item) not in ordered:
            ordered[id(item)] = item
            item = by_parent.get(item.sha)
    return [*ordered.values(), *(item for item in batch if id(item) not in ordered)]


def _record(store: GitStore, batch: list[_Landed]) -> None:
    change = batch[-1].change
    with transaction.atomic():
        before = change.state
        _follow_branch(store, change)
        if before != change.state:  # a save on an approved change: the approval no longer holds
            audit.record(None, "change.approval_withdrawn", change, source="worker", sha=change.head_sha,
                         details={"reason": "a newer version was saved after the approval"})
            signals.change_moved.send(ChangeRequest, change=change, old=before, new=change.state)
        signals.change_saved.send(ChangeRequest, change=change, sha=change.head_sha)
        for item in batch:
            audit.record(item.user, item.action, change, source=item.source, sha=item.sha, details=item.details)
        index.index_change(store, change, list(dict.fromkeys(name for item in batch for name in item.models)))
        sync.enqueue_push(change.branch, change.head_sha)
    for item in batch:
        if item.change is not change:
            item.change.__dict__.update({f.attname: getattr(change, f.attname) for f in change._meta.concrete_fields})


def _discard_empty(store: GitStore, change: ChangeRequest) -> None:
    """A change opened for a save that then failed (a conflict, a missing model) holds nothing: remove it."""
    tip = store.tip(change.branch)
    if tip == change.base_sha:
        with store.locked(change.branch):
            store.git.run("update-ref", "-d", "--", change.branch, tip, check=False)
        ChangeRequest.objects.filter(pk=change.pk, head_sha=change.base_sha).delete()


def _follow_branch(store: GitStore, change: ChangeRequest) -> None:
    """Set head_sha to the branch's tip, read while holding the change's row.

    Done after the commit, outside the branch's lock, so concurrent saves queue for the database
    and for git separately. The row lock (the write lock on SQLite) orders these updates, and each
    reads the tip after its own commit: the last one to run sees the last commit, so the column
    always ends at the branch's tip. A new commit voids an approval (it was for the old head).
    """
    row = ChangeRequest.objects.select_for_update().get(pk=change.pk)
    tip = store.tip(change.branch) or row.head_sha
    fields: dict[str, Any] = {"head_sha": tip, "updated_at": timezone.now()}
    if row.state == S.APPROVED and row.approved_sha != tip:
        fields.update(state=S.SUBMITTED, approved_sha="")
    ChangeRequest.objects.filter(pk=change.pk).update(**fields)
    # The locked row is the whole row as it now stands: no second read while holding it.
    change.__dict__.update({f.attname: getattr(row, f.attname) for f in change._meta.concrete_fields}, **fields)


def _conflict_check(store: GitStore, snap: Snapshot, base: str, name: str, hints: tuple[str, ...],
                    current: ModelVersion | None) -> None:
    """Conflict if the model differs between the analyst's base version and the branch's tip."""
    if base == snap.commit:
        return
    before = model_files.version(store.snapshot(base), name, hints)
    if model_files.fingerprint(before) == model_files.fingerprint(current):
        return
    paths = sorted({p for v in (before, current) if v for p in (v.sql_path, v.yml_path) if p})
    last = log(store, snap.commit, paths, exclude=base, limit=1) if paths else []
    who = f"{last[0].author_name} ({last[0].authored_at:%Y-%m-%d %H:%M}, “{last[0].subject}”)" if last else "someone"
    what = "deleted" if current is None else "created" if before is None else "changed"
    if current is not None:
        current.last_change = last[0].as_dict() if last else {}
    raise Conflict(
        f"{name} was {what} by {who} after you opened it. Your version was not saved: reload to see "
        "the current version, then apply your edits to it.",
        current_sha=snap.commit or "", current=current,
    )


class _Base:
    """The analyst's base version: given, or the branch's tip the first time the save is built."""

    def __init__(self, given: str | None):
        self.value = given

    def of(self, snap: Snapshot) -> str | None:
        if self.value is None:
            self.value = snap.commit
        return self.value


def save_model(user: Any, change: ChangeRequest | None, name: str, sql: str, spec: ModelSpec,
               base_sha: str | None = None, message: str | None = None, *, folder: str | None = None,
               replace_properties: bool = False, source: str = "page") -> SaveResult:
    """Save a model's SQL and properties as one commit on the change (a new change if `change` is None).

    `base_sha` is the commit the analyst loaded the model from: if the model changed on the branch
    since, Conflict (409) carries the current version. Without it, the branch's tip at the time of
    the call is the base. `spec` gives description, columns and tests; config and other keys of the
    existing entry are kept unless `replace_properties`. A new model goes to models/<folder>/<name>.sql.
    """
    names.model_name(name)
    if not isinstance(sql, str):
        raise InvalidInput("The model's SQL must be text.")
    if len(sql.encode("utf-8", "replace")) > MAX_SQL_BYTES:
        raise InvalidInput(f"The SQL is larger than {MAX_SQL_BYTES // 1024} KB; split the model into smaller ones.")
    if folder is not None:
        names.model_path(f"models/{str(folder).rstrip('/')}/{name}.sql")
    spec = _check_spec(name, spec)
    text = str(message).strip()[:2000] if message and str(message).strip() else None
    base = _Base(base_sha)

    def make(snap: Snapshot, store: GitStore, change: ChangeRequest, all_hints: dict) -> Edit:
        hints = all_hints[name]
        current = model_files.version(snap, name, hints)
        _conflict_check(store, snap, base.of(snap), name, hints, current)
        final = spec if replace_properties else model_files.merged_spec(current.spec if current else None, spec)
        files, _ = model_files.save_files(snap, name, sql, final, folder=folder, hints=hints)
        paths = list(files)
        return Edit(files, text or model_files.describe_save(name, current, sql, final),
                    data={"result": {"created": current is None, "sql_path": paths[0], "yml_path": paths[1]}})

    return _write(user, change, base_sha, [name], make, action="change.save", source=source,
                  open_title=f"Edit {name}")


def rename_model(user: Any, change: ChangeRequest | None, name: str, new_name: str, base_sha: str | None = None,
                 message: str | None = None, *, source: str = "page") -> SaveResult:
    """Rename a model (its SQL file and its properties entry) in one commit. Models that ref() the old
    name are not rewritten: `index.dependents_of` lists them for the page to warn about."""
    names.model_name(name)
    names.model_name(new_name)
    if name == new_name:
        raise InvalidInput("The new name is the same as the old one.")
    base = _Base(base_sha)

    def make(snap: Snapshot, store: GitStore, change: ChangeRequest, all_hints: dict) -> Edit:
        hints = all_hints[name]
        current = model_files.version(snap, name, hints)
        _conflict_check(store, snap, base.of(snap), name, hints, current)
        if current is None:
            raise NotFound(f"There is no model {name} in this change.")
        if model_files.find_sql(snap, new_name) is not None:
            raise Conflict(f"A model named {new_name} exists already; choose another name.",
                           current_sha=snap.commit or "", current=model_files.version(snap, new_name))
        files, _ = model_files.rename_files(snap, name, new_name, hints)
        new_sql = next(p for p, d in files.items() if d is not None and p.endswith(".sql"))
        return Edit(files, (message or "").strip()[:2000] or f"Rename {name} to {new_name}",
                    data={"result": {"sql_path": new_sql}})

    return _write(user, change, base_sha, [name, new_name], make, action="change.rename", source=source,
                  open_title=f"Rename {name} to {new_name}")


def delete_model(user: Any, change: ChangeRequest | None, name: str, base_sha: str | None = None,
                 message: str | None = None, *, source: str = "page") -> SaveResult:
    """Delete a model's SQL file and its properties entry in one commit."""
    names.model_name(name)
    base = _Base(base_sha)

    def make(snap: Snapshot, store: GitStore, change: ChangeRequest, all_hints: dict) -> Edit:
        hints = all_hints[name]
        current = model_files.version(snap, name, hints)
        _conflict_check(store, snap, base.of(snap), name, hints, current)
        if current is None:
            raise NotFound(f"There is no model {name} in this change.")
        files, _ = model_files.delete_files(snap, name, hints)
        return Edit(files, (message or "").strip()[:2000] or f"Delete {name}")

    return _write(user, change, base_sha, [name], make, action="change.delete_model", source=source,
                  open_title=f"Delete {name}")


# --------------------------------------------------------------------------- state machine


def _move(user: Any, change: ChangeRequest, sources: tuple[str, ...], target: str, verb: str, *,
          source: str, action: str, details: dict[str, Any] | None = None, **fields: Any) -> ChangeRequest:
    """Compare-and-set the state under the branch's lock; InvalidState names the state it is in now."""
    store = get_store()
    old = change.state
    with store.locked(change.branch):
        old = ChangeRequest.objects.filter(pk=change.pk).values_list("state", flat=True).first() or old
        updated = ChangeRequest.objects.filter(pk=change.pk, state__in=sources).update(
            state=target, updated_at=timezone.now(), **fields)
    change.refresh_from_db()
    if updated != 1:
        raise InvalidState(f"This change is {change.get_state_display().lower()} now, so it cannot be {verb}.")
    audit.record(user, action, change, source=source, sha=change.head_sha, details={"state": target, **(details or {})})
    signals.change_moved.send(ChangeRequest, change=change, old=old, new=target)
    return change


def submit_change(user: Any, change: ChangeRequest, *, source: str = "page") -> ChangeRequest:
    """Draft (or changes requested) → submitted: the review clock starts."""
    change = _fresh(user, change)
    _require_edit(user, change)
    store = get_store()
    main = store.tip(MAIN_REF)
    head = store.tip(change.branch) or change.head_sha
    base = store.merge_base(main, head) if main and head else None
    if not base or not store.changed_paths(base, head):
        raise InvalidState("There is nothing to review yet: save a model in this change first.")
    return _move(user, change, (S.DRAFT, S.CHANGES_REQUESTED), S.SUBMITTED, "submitted", source=source,
                 action="change.submit", submitted_at=timezone.now(), approved_sha="")


def withdraw_change(user: Any, change: ChangeRequest, *, source: str = "page") -> ChangeRequest:
    """Take a change back from review to draft (its commits stay)."""
    change = _fresh(user, change)
    _require_edit(user, change)
    return _move(user, change, (S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED), S.DRAFT, "withdrawn",
                 source=source, action="change.withdraw", approved_sha="", submitted_at=None)


def abandon_change(user: Any, change: ChangeRequest, *, source: str = "page") -> ChangeRequest:
    """Close a change without merging. Its branch and commits are kept, so nothing saved is lost."""
    change = _fresh(user, change)
    _require_edit(user, change)
    change = _move(user, change, tuple(OPEN_STATES), S.ABANDONED, "abandoned", source=source,
                   action="change.abandon", approved_sha="")
    index.drop_change(change)
    return change


def can_edit(user: Any, change: ChangeRequest) -> bool:
    try:
        _require_edit(user, change)
    except (PermissionDenied, InvalidState):
        return False
    return True
