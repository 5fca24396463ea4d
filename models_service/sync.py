"""Import an engineers' repository, and keep DMAAS_REPO_REMOTE in step both ways.

- After every write the ref goes into the push outbox (a row per ref); a Celery task pushes it right
  after the transaction commits, and the periodic `sync_remote` retries whatever is still pending,
  so a remote or broker outage delays a push but never loses or blocks a save.
- `sync_remote` also fetches the remote's main: engineers' commits fast-forward the portal's main
  (or are merged with it when both moved), the index follows, and open changes are flagged
  "needs update".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit, index
from .errors import InvalidInput, InvalidName, InvalidState, NotFound, RemoteError
from .git_store import MAIN_REF, GitError, GitStore, log, names, remote
from .models import PushOutbox, RemoteSync
from .project_files import ProjectFileError, parse_project_file
from .repo import FIRST_MESSAGE, PORTAL, get_store

logger = logging.getLogger(__name__)
IMPORT_REF = "refs/dmaas/import"
REMOTE_MAIN = "refs/dmaas/remote/main"


def remote_url() -> str:
    url = str(getattr(settings, "DMAAS_REPO_REMOTE", "") or "").strip()
    return names.repository_url(url) if url else ""


# --------------------------------------------------------------------------- pushing (the outbox)


def enqueue_push(ref: str, sha: str) -> None:
    """Record that `ref` should reach the remote at `sha`; a task pushes it after this transaction."""
    if not remote_url() or not ref or not sha:
        return
    PushOutbox.objects.update_or_create(ref=names.short_ref(ref), defaults={"sha": sha})
    transaction.on_commit(_kick)


def _kick() -> None:
    from kombu.exceptions import KombuError

    from .tasks import push_refs

    try:
        push_refs.delay()
    except (KombuError, OSError) as exc:  # the broker is down: the outbox row stays for sync_remote
        logger.warning("could not queue the push (the periodic sync will retry): %s", exc)


def push_pending(store: GitStore | None = None, limit: int = 200) -> dict[str, int]:
    """Push every ref waiting in the outbox. A change branch is the portal's own (forced); main only
    fast-forwards (a rejected main waits for sync_remote to merge the remote's commits first)."""
    url = remote_url()
    if not url:
        return {"pushed": 0, "failed": 0}
    store = store or get_store()
    pushed = failed = 0
    for row in PushOutbox.objects.all()[:limit]:
        if not row.pending:
            continue
        ref = f"refs/heads/{row.ref}"
        try:
            names.checked_ref(ref)
            remote.push(store, url, ref, force=ref != MAIN_REF)
        except (RemoteError, InvalidName, GitError) as exc:  # recorded; one failing ref must not stop the others
            failed += 1
            PushOutbox.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=str(exc)[:1000],
                                                        updated_at=timezone.now())
            logger.warning("push of %s failed (will retry): %s", row.ref, exc)
            continue
        pushed += 1
        PushOutbox.objects.filter(pk=row.pk, sha=row.sha).update(pushed_sha=row.sha, attempts=0, last_error="")
    return {"pushed": pushed, "failed": failed}


# --------------------------------------------------------------------------- fetching


@dataclass
class SyncReport:
    fetched: str = ""  # the remote's main
    outcome: str = "nothing to do"  # fast-forward | merged | remote behind | conflict | no remote | ...
    main_before: str = ""
    main_after: str = ""
    pushed: dict[str, int] = field(default_factory=dict)


def sync_remote() -> SyncReport:
    """Push what is pending, fetch the remote's main and bring engineers' commits into main; then pack
    loose objects now and then, also when the remote is away (a remote down for days must not leave
    the portal's own saves unpacked)."""
    store = get_store()
    try:
        return _sync(store)
    finally:
        store.maintain()


def _sync(store: GitStore) -> SyncReport:
    report = SyncReport()
    url = remote_url()
    if not url:
        report.outcome = "no remote"
        return report
    state, _ = RemoteSync.objects.get_or_create(pk=1, defaults={"remote": url})
    report.pushed = push_pending(store)
    try:
        fetched = remote.fetch(store, url, "main", REMOTE_MAIN)
    except RemoteError as exc:
        RemoteSync.objects.filter(pk=state.pk).update(remote=url, last_error=str(exc), last_error_at=timezone.now())
        raise
    report.fetched = fetched or ""
    with store.locked(MAIN_REF):
        local = store.tip(MAIN_REF)
        report.main_before = local or ""
        if fetched is None or fetched == local:
            report.outcome = "remote has no main" if fetched is None else "up to date"
        elif local is None or store.is_ancestor(local, fetched):
            report.outcome = "fast-forward" if store.move_ref(MAIN_REF, fetched, local, "dmaas: sync from remote") \
                else "main moved meanwhile"
        elif store.is_ancestor(fetched, local):
            report.outcome = "remote behind"
        else:
            report.outcome = _merge_remote(store, local, fetched)
        report.main_after = store.tip(MAIN_REF) or ""
        if report.main_after and report.main_after != report.main_before:
            _main_moved(store, report.main_before or None, report.main_after, f"sync: {report.outcome}")
    error = report.outcome if report.outcome.startswith("conflict") else ""
    RemoteSync.objects.filter(pk=state.pk).update(
        remote=url, last_fetch_at=timezone.now(), last_remote_sha=report.fetched, last_error=error,
        **({"last_error_at": timezone.now()} if error else {}))
    if report.main_after and report.main_after != report.fetched and report.outcome != "up to date":
        enqueue_push(MAIN_REF, report.main_after)
        push_pending(store)
    return report


def _merge_remote(store: GitStore, local: str, fetched: str) -> str:
    """Both moved: merge the engineers' commits into main, as the portal. A conflict leaves main alone."""
    from .git_store import merge

    outcome = merge(store, local, fetched)
    if not outcome.clean:
        paths = ", ".join(c.path for c in outcome.conflicts[:5])
        return (f"conflict: engineers' commits on the remote and the portal's main both changed {paths}; "
                "an engineer must merge the portal's main into the remote's main.")
    sha = store.commit_tree(outcome.tree, [local, fetched], PORTAL, "Merge engineers' commits from the remote main")
    return "merged" if store.move_ref(MAIN_REF, sha, local, "dmaas: merge remote main") else "main moved meanwhile"


def _main_moved(store: GitStore, old: str | None, new: str, why: str) -> None:
    from .merging import mark_base_moved

    with transaction.atomic():
        index.update_main(store, old, new)
        mark_base_moved(new)
        audit.record(None, "repo.sync", None, source="worker", sha=new, object_type="repository",
                     object_id="main", object_repr="main", details={"from": old or "", "why": why})


# --------------------------------------------------------------------------- importing


@dataclass
class ImportReport:
    url: str
    branch: str
    sha: str
    commits: int
    outcome: str
    index: dict[str, Any]


def _untouched(store: GitStore, sha: str) -> bool:
    """main holds only the skeleton the portal made on first start (nothing anyone wrote)."""
    entries = log(store, sha, limit=2)
    return len(entries) == 1 and entries[0].author_email == PORTAL.email and entries[0].subject == FIRST_MESSAGE


def import_repository(url: str, *, branch: str | None = None, replace: bool = False, actor: Any = None) -> ImportReport:
    """Adopt an existing dbt project repository, its history kept, as the portal's main."""
    url = remote.checked_url(url)
    store = get_store(create=False)
    store.create()
    branch = branch or remote.default_branch(store, url)
    tip = remote.fetch(store, url, branch, IMPORT_REF)
    if tip is None:
        raise NotFound(f"The repository has no branch {branch}.")
    try:
        _check_project(store, tip)
        with store.locked(MAIN_REF):
            main = store.tip(MAIN_REF)
            if main == tip:
                outcome = "already imported"
            elif main is None or _untouched(store, main) or store.is_ancestor(main, tip):
                outcome = "imported" if main is None or _untouched(store, main) else "fast-forwarded"
                if not store.move_ref(MAIN_REF, tip, main, f"dmaas: import {branch}"):
                    raise InvalidState("main moved while importing; nothing was changed. Please try again.")
            elif replace:
                store.set_internal_ref(f"refs/dmaas/replaced/{timezone.now():%Y%m%d%H%M%S}", main)
                if not store.move_ref(MAIN_REF, tip, main, f"dmaas: import {branch} (replacing main)"):
                    raise InvalidState("main moved while importing; nothing was changed. Please try again.")
                outcome = "replaced main (the old main is kept under refs/dmaas/replaced/)"
            else:
                raise InvalidState(
                    "The portal's repository already has its own history on main, which the imported branch "
                    "does not contain. Run the import with --replace to make the imported branch main (the "
                    "old main is kept under refs/dmaas/replaced/)."
                )
            counts = index.rebuild_all(store)
    finally:
        store.set_internal_ref(IMPORT_REF, None)
    from .merging import mark_base_moved

    mark_base_moved(tip)
    audit.record(actor, "repo.import", None, source="cli", sha=tip, object_type="repository", object_id="main",
                 object_repr=url[:200], details={"url": url, "branch": branch, "outcome": outcome})
    enqueue_push(MAIN_REF, tip)
    return ImportReport(url, branch, tip, store.count_commits(None, tip), outcome, counts)


def _check_project(store: GitStore, tip: str) -> None:
    snap = store.snapshot(tip)
    text = snap.text("dbt_project.yml")
    if text is None:
        raise InvalidInput("This repository is not a dbt project: it has no dbt_project.yml at its top level.")
    try:
        parse_project_file(text)
    except ProjectFileError as exc:
        raise InvalidInput(f"The repository's dbt_project.yml cannot be read: {exc}") from None
    odd = [path for path, entry in snap.walk() if not entry.is_blob]
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise InvalidInput(f"The repository contains symbolic links or submodules ({shown}); dmaas adopts only "
                           "plain files. Replace them with the files themselves and import again.")
