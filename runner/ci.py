"""CI builds of change requests (dbt's "slim CI" with deferral), and the auto-approval that follows.

`request_build(change)` records a queued CIBuild for the change's head (one per commit: asking twice
is a no-op) and queues `runner.tasks.ci_build`; builds of older commits still queued become stale.
`execute(build_id)` (the task) builds, into `ci_<change>`, the models the change modifies and every
model downstream of them, with unmodified parents read from production, runs their data tests, and
records per model its status, seconds, rows, production rows and a data diff (where a key is
declared), per test its outcome with failing-row samples. It then runs the editor's checks on each
modified model (validation errors and breaking changes downstream) and asks the auto-approval
policy (runner/policy.py), which may approve the change. The task is idempotent: a finished build is
left alone; one redelivered while "running" runs again (every CI relation is a replace).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from models_service import reading
from models_service.git_store import MAIN_REF
from models_service.models import ChangeRequest
from models_service.models.changes import OPEN_STATES
from models_service.repo import get_store
from runner.engine.adapters.base import rel
from runner.engine.compiler import Target, quote
from runner.engine.execution import Executor, NodeResult, RunOptions
from runner.engine.project import MappingSource, load_project

from . import jobs, preview
from . import warehouse as wh
from .models import BuildStatus, CIBuild, MeasureKind
from .observe import record as observe

log = logging.getLogger(__name__)
B = BuildStatus


def ci_schema(change_id: int) -> str:
    """`ci_<change>`, after the copy's schema prefix (settings.DMAAS_SCHEMA_PREFIX, empty in production)."""
    return f"{wh.setting('DMAAS_SCHEMA_PREFIX', '')}ci_{int(change_id)}"


def request_build(change: ChangeRequest) -> CIBuild | None:
    """Queue a CI build of the change's head (None for a change with no branch)."""
    head = get_store().tip(change.branch) if change.branch else None
    head = head or change.head_sha
    if not head:
        return None
    CIBuild.objects.filter(change=change, status=B.QUEUED).exclude(sha=head).update(
        status=B.STALE, message="A newer version was saved; it is built instead.", finished_at=timezone.now())
    build, created = CIBuild.objects.get_or_create(change=change, sha=head,
                                                   defaults={"schema": ci_schema(change.pk)})
    if created:
        transaction.on_commit(lambda: _enqueue(build.pk))
    return build


def retry_build(user: Any, change: ChangeRequest) -> CIBuild:
    """Build the change's head again (after an error, or to see it once more): its author, reviewers."""
    from models_service import access, changes

    change = changes.get_change(user, change.pk)
    if not (access.can(user, "model.edit", change) or access.can(user, "change.review")):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only the change's author and reviewers can build it again.")
    if change.state not in OPEN_STATES:
        from models_service.errors import InvalidState

        raise InvalidState(f"This change is {change.get_state_display().lower()}; there is nothing to build.")
    build = request_build(change)
    if build is None:
        from models_service.errors import InvalidState

        raise InvalidState("This change has nothing saved to build yet.")
    if CIBuild.objects.filter(pk=build.pk, status__in=(B.PASSED, B.FAILED, B.ERROR, B.STALE)).update(
            status=B.QUEUED, message="", started_at=None, finished_at=None, nodes=[], policy={}):
        transaction.on_commit(lambda: _enqueue(build.pk))
        build.refresh_from_db()
    return build


def _enqueue(build_id: int) -> None:
    from .tasks import ci_build

    jobs.send(CIBuild, build_id, ci_build)  # the broker down: the row waits for the reconciler


def latest_build(change: ChangeRequest) -> CIBuild | None:
    """The build of the change's head, else its newest build."""
    builds = list(CIBuild.objects.filter(change=change).order_by("-created_at", "-id")[:20])
    for build in builds:
        if build.sha == change.head_sha:
            return build
    return builds[0] if builds else None


# --------------------------------------------------------------------------- the worker's side


def execute(build_id: int) -> str:
    """Run a queued CI build to its end; returns its status. Never raises for the models' faults."""
    build = jobs.claim(CIBuild, build_id, "change", "change__author")
    if build is None:
        return CIBuild.objects.filter(pk=build_id).values_list("status", flat=True).first() or "missing"
    change = build.change
    if change.state not in OPEN_STATES or (change.head_sha and change.head_sha != build.sha):
        jobs.save(build, status=B.STALE, finished_at=timezone.now(),
              message="The change moved on before this build started; its newest version is built instead.")
        return build.status
    try:
        _execute(build)
    except preview.PreviewFailed as err:
        where = f" (line {err.line})" if err.line else ""
        jobs.save(build, status=B.ERROR, message=f"{err.message}{where}", finished_at=timezone.now())
    except Exception as err:  # noqa: BLE001 - recorded for the change's page, logged for us
        log.exception("CI build %s failed", build.pk)
        jobs.save(build, status=B.ERROR, message=f"The build could not run: {err}", finished_at=timezone.now())
    from . import policy

    policy.judge(build)
    return build.status


def _execute(build: CIBuild) -> None:
    store = get_store()
    change = build.change
    warehouse = wh.get_warehouse()
    at = preview.project_at(change, build.sha)
    main = store.tip(MAIN_REF)
    base = store.merge_base(main, build.sha) if main else None
    diffs = reading.diff_between(store, base, build.sha) if base and base != build.sha else []
    project = load_project(MappingSource(dict(at.files)))
    modified = {project.model_uid(d.name) for d in diffs if d.status != "deleted"} - {None}
    modified |= {u for u, n in project.nodes.items() if n.resource_type in ("model", "seed")
                 and n.path in at.modified_paths}
    production = wh.production_schema()
    target = Target(name="ci", schema=build.schema, type=warehouse.type)
    first = preview.DeferringCompiler(load_project(MappingSource(dict(at.files))), target, production,
                                      set(modified)).compile()
    downstream = set()
    for uid in modified:
        downstream |= {d for d in first.graph.descendants(uid) if first.nodes[d].resource_type == "model"}
    dev = set(modified) | downstream
    manifest = preview.DeferringCompiler(project, target, production, dev).compile()
    built = {u for u in dev if manifest.nodes[u].resource_type in ("model", "seed")
             and manifest.nodes[u].materialized != "ephemeral"}
    tests = {u for u, n in manifest.nodes.items() if n.resource_type == "test" and set(n.depends_on) & dev}
    order = sorted(built, key=lambda u: manifest.nodes[u].name) + sorted(tests, key=lambda u: manifest.nodes[u].name)
    build.nodes = [_row(manifest, u) for u in order]
    index = {u: i for i, u in enumerate(order)}
    jobs.save(build, nodes=build.nodes, modified=sorted(manifest.nodes[u].name for u in modified),
          downstream=sorted(manifest.nodes[u].name for u in downstream - modified))

    with warehouse.build() as adapter:

        def on_result(result: NodeResult) -> None:
            row = build.nodes[index[result.unique_id]]
            row.update(status=result.status, message=result.message or "", seconds=result.seconds)
            if result.resource_type == "test":
                row["rows"] = result.failures
                if result.status in ("fail", "warn") and result.failures:
                    row["failing_columns"], row["failing_rows"] = jobs.failing_rows(adapter, manifest.compiled[
                        result.unique_id])
            else:
                row["rows"] = result.rows
            CIBuild.objects.filter(pk=build.pk).update(nodes=build.nodes)

        options = RunOptions(command="build", threads=2, full_refresh=True, on_result=on_result)
        summary = Executor(manifest, adapter, options).run(built | tests)
        taken = observe.take(adapter, manifest, summary.results)
        for uid in built:
            row = build.nodes[index[uid]]
            if row["status"] == "success":
                row.update(_compare(adapter, manifest, uid, production))
    observe.save_all(taken, MeasureKind.CI, ci_build=build)
    bad = [r for r in summary.results if r.status in ("error", "fail", "skipped")]
    seconds = round(sum(r.seconds or 0 for r in summary.results), 3)
    status = B.PASSED if not bad else B.FAILED
    message = "" if not bad else f"{bad[0].name}: {bad[0].message}" if bad[0].message else bad[0].name
    jobs.save(build, status=status, message=message, seconds=seconds, nodes=build.nodes, finished_at=timezone.now(),
          validation=_validate(change, at, manifest, modified))


def _row(manifest: Any, uid: str) -> dict[str, Any]:
    node = manifest.nodes[uid]
    return {"name": node.name, "kind": "test" if node.resource_type == "test" else node.resource_type,
            "model": node.test.model if node.test else node.name,
            "severity": node.config.get("severity", "error") if node.resource_type == "test" else None,
            "status": "pending", "message": "", "seconds": None, "rows": None, "failing_rows": [],
            "failing_columns": [], "production_rows": None, "diff": None}


def _key_of(manifest: Any, uid: str) -> str | None:
    """The model's key: its unique_key, else a column with a `unique` test."""
    node = manifest.nodes[uid]
    key = node.config.get("unique_key")
    if isinstance(key, str) and key.isidentifier():
        return key
    for other in manifest.nodes.values():
        info = other.test
        if info and info.kind == "unique" and info.attached_uid == uid and info.column and info.column.isidentifier():
            return info.column
    return None


def _compare(adapter: Any, manifest: Any, uid: str, production: str) -> dict[str, Any]:
    """Production rows, and rows added, removed and changed against production where a key is declared."""
    schema, name = manifest.relations[uid]
    out: dict[str, Any] = {}
    try:
        if adapter.relation_type(production, name) is None:
            return {"production_rows": None, "diff": {"note": "new: not in production yet"}}
        out["production_rows"] = int(adapter.fetchall(f"select count(*) from {rel(production, name)}")[0][0])
        key = _key_of(manifest, uid)
        if key is None:
            out["diff"] = {"note": "no key declared (a unique_key or a unique test): only row counts compared"}
            return out
        new, old = rel(schema, name), rel(production, name)
        k = quote(key)
        added = adapter.fetchall(f"select count(*) from {new} n where not exists "
                                 f"(select 1 from {old} o where o.{k} = n.{k})")[0][0]
        removed = adapter.fetchall(f"select count(*) from {old} o where not exists "
                                   f"(select 1 from {new} n where n.{k} = o.{k})")[0][0]
        new_cols = [c for c, _ in adapter.columns(schema, name)]
        old_cols = {c for c, _ in adapter.columns(production, name)}
        common = ", ".join(quote(c) for c in new_cols if c in old_cols)
        changed = adapter.fetchall(f"select count(*) from (select {common} from {new} except select {common} "
                                   f"from {old}) d where d.{k} in (select {k} from {old})")[0][0]
        dropped = sorted(old_cols - set(new_cols))
        added_cols = [c for c in new_cols if c not in old_cols]
        note = "; ".join(part for part in (
            f"columns dropped: {', '.join(dropped)}" if dropped else "",
            f"columns added: {', '.join(added_cols)}" if added_cols else "") if part)
        out["diff"] = {"key": key, "added": int(added), "removed": int(removed), "changed": int(changed),
                       **({"note": note + " (changed rows compare the columns both have)"} if note else {})}
    except Exception as err:  # noqa: BLE001 - the comparison is information; the build stands without it
        log.warning("comparing %s with production failed", name, exc_info=True)
        out.setdefault("diff", {"note": f"could not compare with production: {err}"})
    return out


def _validate(change: ChangeRequest, at: Any, manifest: Any, modified: set[str]) -> dict[str, Any]:
    """The editor's checks on each modified model as saved: errors, and breaking changes downstream."""
    from runner.validation.checks import validate_text
    from runner.validation.service import project_view

    view = project_view(change)
    errors, breaking = [], []
    for uid in sorted(modified, key=lambda u: manifest.nodes[u].name):
        node = manifest.nodes[uid]
        if node.resource_type != "model":
            continue
        result = validate_text(at.files.get(node.path, node.raw_code), node.name, view).as_dict()
        for d in result["diagnostics"]:
            entry = {"model": node.name, "line": d["line"], "column": d["column"], "code": d["code"],
                     "message": d["message"]}
            if d["severity"] == "error":
                errors.append(entry)
            elif d["code"] == "breaking_change":
                breaking.append(entry)
    return {"errors": errors, "breaking": breaking}


def drop_schema(change_id: int) -> None:
    """Drop `ci_<change>` (after the change is merged or abandoned)."""
    schema = ci_schema(change_id)
    with wh.get_warehouse().build() as adapter:
        adapter.drop_schema(schema)  # and the relations a worker's lingering catalog still names
