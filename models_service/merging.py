"""Merging a change into main, updating a change with main, reverting a model: three-way merges in git.

`git merge-tree --write-tree` merges without a work tree. Its conflicts are then looked at model by
model: a properties file that both sides edited is merged entry by entry (two analysts describing
two different models in one `_staging.yml` is not a conflict), and what remains is put in plain
words — which model, which lines, who changed them on the other side — never as git output.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import access, audit, index, model_files, signals, sync
from .changes import S, SaveResult, _fresh, _require_edit, save_model
from .errors import ConflictDetail, InvalidInput, InvalidState, MergeConflict, NotFound
from .git_store import MAIN_REF, GitStore, MergeOutcome, log, merge, names
from .models import ChangeRequest
from .models.changes import OPEN_STATES
from .project_files import ProjectFileError, load_yaml
from .repo import PORTAL, get_store, identity
from .yml_edit import model_entries, set_entry

BASE_MOVED = "main has moved on since this change was started: update it to test it against the latest version."
MINE, THEIRS = "mine", "theirs"


@dataclass
class MergeResult:
    sha: str  # the new commit (merge commit on main, or the update commit on the branch); "" if none needed
    change: ChangeRequest
    changed: bool


# --------------------------------------------------------------------------- resolving and describing


def _text(store: GitStore, stage: tuple[str, str] | None) -> str | None:
    return store.git.read_text(stage[1]) if stage else None


def _model_of(path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem if path.startswith("models/") and path.endswith(".sql") else path


def _lines(base: str, mine: str, other: str) -> list[tuple[int, int]]:
    """Line ranges (1-based, in `mine`) that both sides changed relative to `base`."""
    b = base.splitlines()
    other_ranges = [(i1, i2) for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, b, other.splitlines()).get_opcodes()
                    if tag != "equal"]
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b, mine.splitlines()).get_opcodes():
        if tag == "equal":
            continue
        if any(o1 <= max(i2, i1 + 1) and i1 <= max(o2, o1 + 1) for o1, o2 in other_ranges):
            out.append((j1 + 1, max(j2, j1 + 1)))
    return out or [(1, max(1, len(mine.splitlines())))]


def _span(lines: list[tuple[int, int]]) -> str:
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in lines[:4]]
    return ("line " if len(parts) == 1 and "–" not in parts[0] else "lines ") + ", ".join(parts)


def _who(store: GitStore, other_tip: str, base: str | None, paths: list[str], side: str) -> str:
    commits = log(store, other_tip, paths, exclude=base, limit=2)
    if not commits:
        return f"on {side}"
    c = commits[0]
    return f"on {side} by {c.author_name} in “{c.subject}” ({c.authored_at:%Y-%m-%d})"


class _Resolver:
    """Resolve merge-tree's conflicts model by model; collect what stays in conflict."""

    def __init__(self, store: GitStore, outcome: MergeOutcome, *, mine_stage: int, other_tip: str, other_side: str,
                 resolutions: dict[str, str]):
        self.store, self.outcome = store, outcome
        self.mine, self.other = mine_stage, 5 - mine_stage  # stages 2 and 3
        self.other_tip, self.other_side = other_tip, other_side
        self.resolutions = resolutions
        self.files: dict[str, bytes | None] = {}
        self.conflicts: list[ConflictDetail] = []

    def pick(self, name: str) -> str | None:
        choice = self.resolutions.get(name)
        if choice not in (None, MINE, THEIRS):
            raise InvalidInput(f"Choose {MINE!r} or {THEIRS!r} for {name}, not {choice!r}.")
        return choice

    def run(self) -> None:
        for cf in self.outcome.conflicts:
            if cf.path.startswith("models/") and cf.path.endswith((".yml", ".yaml")):
                self._properties(cf)
            else:
                self._whole_file(cf)

    def _whole_file(self, cf: Any) -> None:
        name = _model_of(cf.path)
        mine, other = cf.stages.get(self.mine), cf.stages.get(self.other)
        choice = self.pick(name)
        if choice:
            chosen = mine if choice == MINE else other
            self.files[cf.path] = self.store.git.read(chosen[1])[1] if chosen else None
            return
        who = _who(self.store, self.other_tip, self.outcome.base, [cf.path], self.other_side)
        if mine is None or other is None:
            deleted_by = "this change" if mine is None else self.other_side
            detail = ConflictDetail(name, "file" if name == cf.path else "sql", [],
                                    f"deleted {who}" if other is None else who,
                                    f"{name}: {deleted_by} deletes it while the other side edits it ({who}).")
        else:
            lines = _lines(_text(self.store, cf.stages.get(1)) or "", _text(self.store, mine) or "",
                           _text(self.store, other) or "")
            part = "SQL" if name != cf.path else "file"
            detail = ConflictDetail(name, "sql" if name != cf.path else "file", lines, who,
                                    f"{name} ({part}, {_span(lines)}): this change and {self.other_side} both "
                                    f"changed these lines — {who}.")
        self.conflicts.append(detail)

    def _properties(self, cf: Any) -> None:
        texts = {k: _text(self.store, cf.stages.get(k)) for k in (1, self.mine, self.other)}
        try:
            entries = {k: model_entries(t, cf.path) for k, t in texts.items()}
            rest = {k: _rest(t, cf.path) for k, t in texts.items()}
        except ProjectFileError:
            return self._whole_file(cf)
        base, mine, other = entries[1], entries[self.mine], entries[self.other]
        if rest[self.mine] != rest[self.other] and rest[1] not in (rest[self.mine], rest[self.other]):
            return self._whole_file(cf)  # sources or other keys edited on both sides
        # Keep the side whose other keys (version, sources) are the merged ones; lay the entries over it.
        start = self.mine if rest[self.mine] == rest[self.other] or rest[self.other] == rest[1] else self.other
        if texts[start] is None:
            start = self.other if start == self.mine else self.mine
        result_text, current = texts[start], dict(entries[start])
        who = None
        for name in sorted(base.keys() | mine.keys() | other.keys()):
            b, m, o = base.get(name), mine.get(name), other.get(name)
            if m == o or o == b:
                want = m
            elif m == b:
                want = o
            else:
                choice = self.pick(name)
                if choice is None:
                    who = who or _who(self.store, self.other_tip, self.outcome.base, [cf.path], self.other_side)
                    parts = _entry_parts(b or {}, m or {}, o or {})
                    self.conflicts.append(ConflictDetail(
                        name, "properties", [], who,
                        f"{name} ({parts}): this change and {self.other_side} both changed "
                        f"{'it' if ',' not in parts and ' and ' not in parts else 'them'} differently — {who}."))
                    continue
                want = m if choice == MINE else o
            if current.get(name) != want:
                result_text = set_entry(result_text, cf.path, name, want)
                current = model_entries(result_text, cf.path)
        self.files[cf.path] = result_text.encode("utf-8") if result_text is not None else None


def _entry_parts(base: dict, mine: dict, other: dict) -> str:
    """Which parts of a properties entry both sides changed: 'description', 'columns and tests'..."""
    label = {"data_tests": "tests", "tests": "tests", "config": "config", "description": "description",
             "columns": "columns"}
    keys = {k for k in mine.keys() | other.keys() if mine.get(k) != base.get(k) and other.get(k) != base.get(k)}
    parts = sorted({label.get(k, "properties") for k in keys}) or ["properties"]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _rest(text: str | None, path: str) -> Any:
    data = (load_yaml(text, path) or {}) if text else {}
    return {k: v for k, v in data.items() if k != "models"} if isinstance(data, dict) else data


def _resolve(store: GitStore, ours: str, theirs: str, *, mine_stage: int, other_side: str,
             resolutions: dict[str, str] | None = None) -> tuple[str, list[ConflictDetail]]:
    outcome = merge(store, ours, theirs)
    if outcome.clean:
        return outcome.tree, []
    resolver = _Resolver(store, outcome, mine_stage=mine_stage, other_tip=theirs if mine_stage == 2 else ours,
                         other_side=other_side, resolutions=resolutions or {})
    resolver.run()
    if resolver.conflicts:
        return "", resolver.conflicts
    return store.write_tree(outcome.tree, resolver.files), []


def _conflict_message(conflicts: list[ConflictDetail], action: str) -> str:
    lines = "\n".join(f"- {c.message}" for c in conflicts)
    return (f"This change cannot be {action} as it is, because the same models were changed on main:\n{lines}\n"
            "Update the change, choosing for each of these models whether to keep your version or main's "
            "(you can edit it again afterwards).")


def mark_base_moved(new_main: str, *, exclude: int | None = None) -> int:
    """Flag open changes whose base is not main's tip any more: their pages offer the one-click update."""
    qs = ChangeRequest.objects.filter(state__in=OPEN_STATES).exclude(base_sha=new_main)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.filter(needs_update=False).update(needs_update=True, update_reason=BASE_MOVED)


# --------------------------------------------------------------------------- merge and update


def merge_change(user: Any, change: ChangeRequest, *, source: str = "page") -> MergeResult:
    """Merge an approved change into main (a merge commit, by compare-and-swap on main).

    `user` is the reviewer or admin who merges (never the change's author), or None for the system
    (a worker merging after approval). On conflict: MergeConflict, the change is flagged
    `needs_update` with the plain-words reason, and main is left as it was.
    """
    if user is not None:
        change = _fresh(user, change)
        access.require(user, "change.review", change)
    else:
        change = ChangeRequest.objects.get(pk=change.pk)
    if change.state != S.APPROVED:
        raise InvalidState(f"Only an approved change can be merged; this one is {change.get_state_display().lower()}.")
    store = get_store()
    with store.locked(change.branch), store.locked(MAIN_REF):
        change.refresh_from_db()
        head = store.tip(change.branch)
        if change.state != S.APPROVED or head is None:
            raise InvalidState("This change is not approved any more.")
        if change.approved_sha and change.approved_sha != head:
            raise InvalidState("The change has new commits since it was approved: it needs another review.")
        for _ in range(5):
            main = store.tip(MAIN_REF)
            tree, conflicts = _resolve(store, main, head, mine_stage=3, other_side="main")
            if conflicts:
                message = _conflict_message(conflicts, "merged")
                ChangeRequest.objects.filter(pk=change.pk).update(needs_update=True, update_reason=message)
                raise MergeConflict(message, conflicts=conflicts, current_sha=main)
            body = f"Merge change #{change.pk}: {change.title}\n\n{change.description}".strip()
            body += f"\n\nChange-Request: {change.pk}\nBranch: {change.branch_name}"
            sha = store.commit_tree(tree, [main, head], identity(user) if user else PORTAL, body)
            if store.move_ref(MAIN_REF, sha, main, f"dmaas: merge change {change.pk}"):
                break
        else:
            raise InvalidState("main kept moving while merging; nothing was merged. Please try again.")
        now = timezone.now()
        with transaction.atomic():
            ChangeRequest.objects.filter(pk=change.pk, state=S.APPROVED).update(
                state=S.MERGED, merged_sha=sha, merged_at=now, head_sha=head, needs_update=False,
                update_reason="", updated_at=now)
            change.refresh_from_db()
            audit.record(user, "change.merge", change, source=source, sha=sha,
                         details={"head": head, "main_before": main})
            # Still under main's lock, so the index follows main in commit order.
            index.update_main(store, main, sha)
            index.drop_change(change)
            mark_base_moved(sha, exclude=change.pk)
            sync.enqueue_push(MAIN_REF, sha)
            signals.change_moved.send(ChangeRequest, change=change, old=S.APPROVED, new=S.MERGED)
    return MergeResult(sha, change, True)


def update_change(user: Any, change: ChangeRequest, resolutions: dict[str, str] | None = None, *,
                  source: str = "page") -> MergeResult:
    """Bring main's new commits into the change (merge main into its branch): the one-click update.

    `resolutions` maps a model name to "mine" or "theirs" for models changed on both sides; without
    a choice for each, MergeConflict lists them and nothing is written.
    """
    change = _fresh(user, change)
    _require_edit(user, change)
    store = get_store()
    with store.locked(change.branch):
        head = store.tip(change.branch)
        main = store.tip(MAIN_REF)
        if store.is_ancestor(main, head):
            ChangeRequest.objects.filter(pk=change.pk).update(base_sha=main, needs_update=False, update_reason="")
            change.refresh_from_db()
            return MergeResult("", change, False)
        tree, conflicts = _resolve(store, head, main, mine_stage=2, other_side="main", resolutions=resolutions)
        if conflicts:
            message = _conflict_message(conflicts, "updated")
            ChangeRequest.objects.filter(pk=change.pk).update(needs_update=True, update_reason=message)
            raise MergeConflict(message, conflicts=conflicts, current_sha=head)
        sha = store.commit_tree(tree, [head, main], identity(user), "Update with the latest main")
        if not store.move_ref(change.branch, sha, head, "dmaas: update change"):
            raise InvalidState("The change moved while updating; nothing was written. Please try again.")
        now = timezone.now()
        ChangeRequest.objects.filter(pk=change.pk).update(head_sha=sha, base_sha=main, needs_update=False,
                                                          update_reason="", updated_at=now)
        ChangeRequest.objects.filter(pk=change.pk, state=S.APPROVED).update(state=S.SUBMITTED, approved_sha="")
    change.refresh_from_db()
    with transaction.atomic():
        audit.record(user, "change.update", change, source=source, sha=sha,
                     details={"main": main, "resolutions": resolutions or {}})
        index.index_change(store, change)
        sync.enqueue_push(change.branch, sha)
    return MergeResult(sha, change, True)


def revert_model(user: Any, name: str, to_sha: str, change: ChangeRequest | None = None, *,
                 source: str = "page") -> SaveResult:
    """Open a change (or use `change`) that puts a model back as it was at commit `to_sha`."""
    names.model_name(name)
    names.sha(to_sha)
    access.require(user, "model.edit")
    store = get_store()
    if store.resolve(to_sha) is None:
        raise NotFound(f"There is no version {to_sha[:12]} in the repository.")
    old = model_files.version(store.snapshot(to_sha), name)
    if old is None:
        raise NotFound(f"{name} did not exist in version {to_sha[:12]}.")
    when = log(store, to_sha, limit=1)[0].authored_at
    message = f"Revert {name} to the version of {when:%Y-%m-%d %H:%M} ({to_sha[:7]})"
    opened = change is None
    if change is None:
        from .changes import open_change

        change = open_change(user, f"Revert {name} to {to_sha[:7]}", source=source)
    result = save_model(user, change, name, old.sql, old.spec, message=message, replace_properties=True,
                        source=source)
    result.opened = opened
    if result.changed:
        audit.record(user, "model.revert", result.change, source=source, sha=result.sha,
                     details={"model": name, "to": to_sha})
    return result
