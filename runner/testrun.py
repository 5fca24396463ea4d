""""Test my model": build one model of a change into the analyst's dev schema and run its data tests.

`request_test(user, change, name)` records a queued `TestRun` for the model as saved on the change's
branch (the commit is fixed then) and queues `runner.tasks.test_model` on the `interactive` queue.
`execute(run_id)` (the task) compiles that commit with deferral (runner/preview.py: unmodified parents
read production, modified ones `dev_<user>`), builds the model, and the parents this change modified
that it reads, into `dev_<user>` with the engine's executor in `build` mode, then runs the model's data
tests, under a write lease of the warehouse access layer (runner/warehouse.py, which keeps previews
working meanwhile). Each node's end updates `steps`, so the page can poll progress; a failing test
carries a sample of its failing rows (at most 10).

The outcome is `passed` (every step passed or warned), `failed` (a build errored or a test failed) or
`error` (the project could not be compiled, or the platform failed). The task is idempotent: a run
that has finished is left alone; one redelivered while "running" (its worker died) runs again, and a
rebuild of a dev relation is a replace.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from models_service import access, changes, reading
from models_service.errors import InvalidState, NotFound
from models_service.models import ChangeRequest
from runner.engine.execution import Executor, NodeResult, RunOptions
from runner.engine.project import ProjectError

from . import jobs, preview
from . import warehouse as wh
from .models import MeasureKind, TestRun, TestRunStatus
from .observe import record as observe

log = logging.getLogger(__name__)
S = TestRunStatus


def request_test(user: Any, change: int | ChangeRequest, name: str) -> TestRun:
    """Queue a test of `name` as saved on the change (the author's or an admin's, while it is open)."""
    access.require(user, "model.edit")
    change = changes.get_change(user, change.pk if isinstance(change, ChangeRequest) else change)
    if not access.can(user, "model.edit", change):
        raise PermissionDenied("Only the change's author (or a platform admin) can test its models.")
    if not changes.can_edit(user, change):
        raise InvalidState(f"This change is {change.get_state_display().lower()}; open a new change to test models.")
    version = reading.get_model(user, name, change=change)  # NotFound when the model is not saved there
    run = TestRun.objects.create(requester=user, change=change, model=name, commit=version.commit,
                                 schema=preview.dev_schema(user))
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from .tasks import test_model

    jobs.send(TestRun, run_id, test_model)  # the broker down: the row waits for the reconciler


def get_test_run(user: Any, run_id: Any) -> TestRun:
    """A test run its requester (or an admin) may see; anyone else gets NotFound."""
    try:
        run = TestRun.objects.select_related("change", "requester").get(pk=int(run_id))
    except (TestRun.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no test run {run_id}.") from None
    if run.requester_id != user.pk and not access.has_role(user, access.Role.ADMIN):
        raise NotFound(f"There is no test run {run_id}.")
    return run


def as_dict(run: TestRun) -> dict[str, Any]:
    return {
        "id": run.pk, "status": run.status, "model": run.model, "change": run.change_id, "commit": run.commit,
        "schema": run.schema, "message": run.message, "created_at": run.created_at,
        "started_at": run.started_at, "finished_at": run.finished_at, "steps": run.steps,
    }


# --------------------------------------------------------------------------- the worker's side


def _finish(run: TestRun, status: str, message: str = "") -> None:
    jobs.save(run, status=status, message=message, finished_at=timezone.now(), steps=run.steps)


def execute(run_id: int) -> str:
    """Run a queued test run to its end; returns its status. Never raises for the model's faults."""
    run = jobs.claim(TestRun, run_id, "change", "requester")
    if run is None:
        found = TestRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return found or "missing"
    try:
        return _execute(run)
    except preview.PreviewFailed as err:
        where = f" (line {err.line})" if err.line else ""
        _finish(run, S.ERROR, f"{err.message}{where}")
    except Exception as err:  # noqa: BLE001 - recorded for the analyst, logged for us
        log.exception("test run %s failed", run.pk)
        _finish(run, S.ERROR, f"The test could not run: {err}")
    return run.status


def _execute(run: TestRun) -> str:
    warehouse = wh.get_warehouse()
    at = preview.project_at(run.change, run.commit)
    compiled = preview.compile_model(at, run.model, None, schema=run.schema, target_type=warehouse.type,
                                     with_tests=True)
    manifest, uid = compiled.manifest, compiled.uid
    try:
        manifest.check_sql(uid)
    except ProjectError as err:
        raise preview.PreviewFailed("compile_error", err.message, err.line) from None
    if manifest.nodes[uid].materialized == "ephemeral":
        raise preview.PreviewFailed("compile_error", f"{run.model} is ephemeral: it is never built on its own but "
                                    "inlined into the models that use it. Test one of those instead.")
    ancestors = manifest.graph.ancestors(uid)
    # the parents this change modified are built too (into dev), so the model reads the change's versions
    builds = [u for u in manifest.nodes if u in ancestors and u in compiled.dev_nodes
              and manifest.nodes[u].resource_type == "model" and manifest.nodes[u].materialized != "ephemeral"]
    builds.append(uid)
    tests = [u for u, n in manifest.nodes.items() if n.resource_type == "test" and uid in n.depends_on]
    run.steps = [_step(manifest.nodes[u].name, "model" if u in builds else "test") for u in builds + tests]
    index = {u: i for i, u in enumerate(builds + tests)}
    TestRun.objects.filter(pk=run.pk).update(steps=run.steps)

    with warehouse.build() as adapter:

        def on_result(result: NodeResult) -> None:
            step = run.steps[index[result.unique_id]]
            step.update(status=result.status, message=result.message or "", seconds=result.seconds)
            if result.resource_type == "test":
                step["rows"] = result.failures
                if result.status in ("fail", "warn") and result.failures:
                    step["failing_columns"], step["failing_rows"] = jobs.failing_rows(adapter, manifest.compiled[
                        result.unique_id])
            else:
                step["rows"] = result.rows
            TestRun.objects.filter(pk=run.pk).update(steps=run.steps)

        # compiled without is_incremental(): an incremental model is rebuilt whole in dev, never appended to
        options = RunOptions(command="build", threads=1, full_refresh=True, on_result=on_result)
        summary = Executor(manifest, adapter, options).run(set(builds) | set(tests))
        taken = observe.take(adapter, manifest, summary.results)
    observe.save_all(taken, MeasureKind.DEV, test_run=run)
    bad = [r for r in summary.results if r.status in ("error", "fail", "skipped")]
    if not bad:
        _finish(run, S.PASSED)
    else:
        first = bad[0]
        _finish(run, S.FAILED, f"{first.name}: {first.message}" if first.message else first.name)
    return run.status


def _step(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "status": "pending", "message": "", "seconds": None, "rows": None,
            "failing_rows": [], "failing_columns": []}
