"""The catalog's view of one model, seed or source on main: what the page and `GET /api/v1/catalog/<name>`
show, assembled from the index (description, owner, tags, columns), the production runs (freshness,
the latest outcome of each of its tests), the last measurement (per-column statistics) and PII tags.

Statistics are values of the data: those of a column confirmed as personal data (min, max, mean,
stddev, top values) are masked for people without `pii.view`, as runner.observe.pii masks rows.
Counts (nulls, distinct) stay: they show a column's health without showing anyone's data.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from models_service import access
from models_service.errors import InvalidInput, NotFound
from models_service.git_store import names
from models_service.index import MAIN
from models_service.models import IndexedNode, NodeKind
from runner import lineage
from runner.models import MEASURE_COMPLETE, MeasureKind, Measurement, NodeRun, NodeStatus, PiiStatus, PiiTag
from runner.observe import pii

N = NodeStatus
FINISHED = (N.SUCCESS, N.ERROR, N.TIMEOUT, N.SKIPPED, N.PASS, N.WARN, N.FAIL)
VALUE_STATS = ("min", "max", "mean", "stddev", "top")  # statistics that show values of the data
COUNT_STATS = ("nulls", "null_fraction", "distinct", "sample")  # sample: rows measured, when a sample
KIND_PREFERENCE = {NodeKind.MODEL: 0, NodeKind.SEED: 1, NodeKind.SOURCE: 2}


def valid_name(name: str) -> bool:
    """A model or seed name, or a source as <source>.<table>."""
    parts = name.split(".")
    return 0 < len(name) <= 200 and len(parts) <= 2 and all(names.is_identifier(p) for p in parts)


def get_node(user: Any, name: str) -> IndexedNode:
    """The node of that name on main (a model before a seed before a source), or NotFound."""
    access.require(user, "catalog.view")
    if not valid_name(name):
        raise NotFound(f"There is nothing named {name[:100]} in the catalog.")
    found = list(IndexedNode.objects.filter(ref=MAIN, name=name, deleted=False).prefetch_related("columns", "tags"))
    if not found:
        raise NotFound(f"There is nothing named {name} on main.")
    return min(found, key=lambda n: KIND_PREFERENCE.get(n.kind, 9))


def latest_measurement(model: str) -> Measurement | None:
    return (Measurement.objects.filter(MEASURE_COMPLETE, model=model, kind=MeasureKind.PRODUCTION)
            .order_by("-measured_at", "-id").first())


def freshness(name: str) -> dict[str, Any]:
    """The last successful production build, and the last attempt when it failed since."""
    built = NodeRun.objects.filter(name=name, resource_type__in=("model", "seed"), status=N.SUCCESS,
                                   finished_at__isnull=False).order_by("-finished_at", "-id").first()
    last = NodeRun.objects.filter(name=name, resource_type__in=("model", "seed"), status__in=FINISHED,
                                  finished_at__isnull=False).order_by("-finished_at", "-id").first()
    return {
        "built_at": built.finished_at if built else None,
        "run": built.run_id if built else None,
        "rows": built.rows if built else None,
        "seconds": built.seconds if built else None,
        "last_status": last.status if last else None,
        "last_at": last.finished_at if last else None,
        "last_run": last.run_id if last else None,
        "failing": bool(last and last.status != N.SUCCESS),
    }


def _stats(column: dict[str, Any] | None, masked: bool) -> dict[str, Any] | None:
    if not column:
        return None
    out = {k: column[k] for k in COUNT_STATS if k in column}
    for k in VALUE_STATS:
        if k in column:
            out[k] = pii.MASK if masked else column[k]
    return out


def _tests_of(name: str) -> tuple[list[dict[str, Any]], str]:
    """The model's tests in main's manifest with their latest production outcome; and a note when main
    does not compile (then nothing is listed)."""
    try:
        manifest = lineage.compiled_main()
    except (NotFound, InvalidInput) as err:
        return [], err.message
    uid = lineage.uid_of(manifest, name)
    if uid is None:
        return [], ""
    tests = {}
    for tid, node in manifest.nodes.items():
        info = node.test
        if node.resource_type != "test" or info is None:
            continue
        if info.attached_uid == uid or (info.kind == "singular" and uid in node.depends_on):
            tests[tid] = {"unique_id": tid, "name": node.name, "kind": info.kind, "column": info.column or "",
                          "severity": str(node.config.get("severity") or "error").lower(), "status": None,
                          "failures": None, "at": None, "run": None, "message": ""}
    last = (NodeRun.objects.filter(unique_id__in=list(tests), resource_type="test", status__in=FINISHED)
            .values("unique_id").annotate(last=Max("id")).values_list("last", flat=True))
    for run in NodeRun.objects.filter(pk__in=list(last)):
        tests[run.unique_id].update(status=run.status, failures=run.failures, at=run.finished_at, run=run.run_id,
                                    message=run.message[:500])
    return sorted(tests.values(), key=lambda t: (t["column"], t["kind"], t["name"])), ""


def model_detail(user: Any, name: str) -> dict[str, Any]:
    """Everything the model page shows but its runs and history (see the module's docstring)."""
    node = get_node(user, name)
    measurement = latest_measurement(node.name) if node.kind != NodeKind.SOURCE else None
    measured = {str(c.get("name", "")).lower(): c for c in (measurement.columns if measurement else []) or []}
    tags = {t.column.lower(): t for t in PiiTag.objects.filter(model=node.name)}
    may_see_pii = access.can(user, "pii.view")
    tests, tests_note = _tests_of(node.name) if node.kind != NodeKind.SOURCE else ([], "")
    by_column: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        by_column.setdefault(test["column"].lower(), []).append(test)

    columns = []
    listed = set()
    for col in node.columns.all():
        columns.append(_column(col.name, col.description, col.data_type, list(col.tests or []),
                               measured.get(col.name.lower()), tags.get(col.name.lower()), may_see_pii,
                               by_column.get(col.name.lower(), []), documented=True))
        listed.add(col.name.lower())
    for key, stat in measured.items():  # in the warehouse but not in the yml
        if key and key not in listed:
            columns.append(_column(str(stat.get("name")), "", "", [], stat, tags.get(key), may_see_pii,
                                   by_column.get(key, []), documented=False))
    graph = lineage.model_graph(user, node.name, up=1, down=1)
    return {
        "node": node,
        "kind": node.kind,
        "name": node.name,
        "description": node.description,
        "owner": node.owner,
        "tags": sorted(t.tag for t in node.tags.all()),
        "materialized": node.materialized or ("seed" if node.kind == NodeKind.SEED else ""),
        "path": node.path,
        "commit": node.commit_sha,
        "freshness": freshness(node.name) if node.kind != NodeKind.SOURCE else None,
        "measurement": {"at": measurement.measured_at, "rows": measurement.rows, "seconds": measurement.seconds,
                        "bytes": measurement.bytes, "run": measurement.run_id} if measurement else None,
        "columns": columns,
        "tests": tests,
        "tests_note": tests_note,
        "model_tests": [t for t in tests if not t["column"]],
        "parents": [n for n in graph["nodes"] if n["layer"] < 0],
        "children": [n for n in graph["nodes"] if n["layer"] > 0],
        "pii_masked": not may_see_pii and any(c["masked"] for c in columns),
    }


def _column(name: str, description: str, data_type: str, test_kinds: list[str], stat: dict[str, Any] | None,
            tag: PiiTag | None, may_see_pii: bool, tests: list[dict[str, Any]], *, documented: bool) -> dict[str, Any]:
    masked = bool(tag and tag.status == PiiStatus.CONFIRMED and not may_see_pii)
    measured_type = str((stat or {}).get("type") or "")
    kinds = list(dict.fromkeys(test_kinds + [t["kind"] for t in tests]))
    return {
        "name": name,
        "type": data_type or measured_type,
        "declared_type": data_type,
        "measured_type": measured_type,
        "description": description,
        "tests": kinds,
        "test_results": tests,
        "pii": {"category": tag.category, "status": tag.status, "confidence": tag.confidence} if tag else None,
        "stats": _stats(stat, masked),
        "masked": masked,
        "documented": documented,
        "in_warehouse": stat is not None,
    }
