"""`validate_model`: the editor's checks as a service function (the API view calls it, so does the bench).

The project state comes from the repository index (models_service.models.IndexedNode / IndexedColumn:
main's rows with the change's own laid over them, as `index.models_in` does) and, for Jinja, from git
(dbt_project.yml and the macros at the change's head). Everything is cached by what identifies it:
main's rows by the indexed sha of main, a change's rows by its indexed sha, the Jinja environment by
the blob ids of dbt_project.yml and the macro files, the parse of every model by its blob id. So a
keystroke costs the render and parse of the text being typed, plus lookups.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from models_service import access, index
from models_service.errors import InvalidInput
from models_service.git_store import MAIN_REF, GitStore, names
from models_service.models import ChangeRequest, IndexedColumn, IndexedNode, IndexedRef, NodeKind
from models_service.project_files import (
    ProjectFileError,
    parse_project_file,
    parse_properties,
    project_skeleton,
)
from models_service.repo import PROJECT_NAME, get_store
from runner.engine.compiler import Compiler, Target
from runner.engine.errors import ProjectError
from runner.engine.project import Project

from .checks import _LRU, NodeInfo, ProjectView, validate_text

log = logging.getLogger(__name__)
MAX_SQL_BYTES = 256 * 1024
_MAIN_NODES = _LRU(4)  # main sha -> {(kind, name): NodeInfo}
_OVERLAYS = _LRU(256)  # (branch, sha) -> {(kind, name): NodeInfo | None (deleted)}
_CONTEXTS = _LRU(512)  # commit -> _Context
_ENVIRONMENTS = _LRU(32)  # environment key -> (Compiler, problems)
_VIEWS = _LRU(64)  # the full key of a project state -> ProjectView
_SOURCE_YML = _LRU(1024)  # yml blob -> {"source.table": (schema, identifier)}


@dataclass(frozen=True)
class _Context:
    key: str
    project_blob: str
    macros: tuple[tuple[str, str], ...]  # (path, blob)


def dialect() -> str:
    return "postgres" if str(settings.DMAAS_WAREHOUSE).lower().startswith("postgres") else "duckdb"


def production_schema() -> str:
    return str(getattr(settings, "DMAAS_PRODUCTION_SCHEMA", "analytics"))


def check_input(sql: Any, name: Any) -> None:
    if not isinstance(sql, str):
        raise InvalidInput("The model's SQL must be text.", field="sql")
    if len(sql.encode("utf-8", "replace")) > MAX_SQL_BYTES:
        raise InvalidInput(f"The SQL is larger than {MAX_SQL_BYTES // 1024} KB; split the model into smaller ones.",
                           field="sql")
    if not (isinstance(name, str) and names.is_identifier(name) and len(name) <= 200):
        names.model_name(name)  # raises, saying why
        raise InvalidInput("The model name is too long.", field="name")


def validate_model(user: Any, *, sql: Any, name: Any, change: ChangeRequest | None = None) -> dict[str, Any]:
    """Diagnostics for the model `name` as typed (`sql`), on the change's branch or on main.

    The caller has fetched `change` with `changes.get_change` (a change the user may not see is a 404).
    """
    started = time.perf_counter()
    access.require(user, "model.edit")
    check_input(sql, name)
    view = project_view(change)
    body = validate_text(sql, name, view).as_dict()
    body["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return body


# --------------------------------------------------------------------------- the project state


def project_view(change: ChangeRequest | None) -> ProjectView:
    store = get_store()
    branch = change.branch_name if change is not None and change.branch else None
    shas = dict(IndexedRef.objects.filter(ref__in=[index.MAIN, branch or index.MAIN]).values_list("ref", "sha"))
    main_sha = shas.get(index.MAIN) or store.tip(MAIN_REF) or ""
    branch_sha = shas.get(branch, "") if branch else ""
    commit = (change.head_sha or store.tip(change.branch) or main_sha) if change is not None else main_sha
    context = _context(store, commit)
    warehouse, schema = dialect(), production_schema()
    key = (store.path, main_sha, branch, branch_sha, context.key, warehouse, schema)
    view = _VIEWS.get(key)
    if view is not None:
        return view
    main = _main_nodes(store, main_sha)  # a repository has one index: its path is part of the key
    nodes = dict(main)
    if branch:
        for k, node in _overlay(store, branch, branch_sha).items():
            if node is None:
                nodes.pop(k, None)
            else:
                nodes[k] = node
    compiler, problems = _environment(store, context, warehouse, schema)
    baseline = {name: n for (kind, name), n in main.items() if kind != NodeKind.SOURCE}
    view = ProjectView(nodes.values(), env=compiler.env, macros=set(compiler._macros), dialect=warehouse,
                       target_schema=schema, read_blob=lambda blob: _read(store, blob), env_key=context.key,
                       baseline=baseline, problems=problems,
                       column_readers=_column_readers(commit, main_sha, schema, _touched(main, nodes)))
    _VIEWS.put(key, view)
    return view


def _touched(main: dict[tuple[str, str], NodeInfo], nodes: dict[tuple[str, str], NodeInfo]) -> dict[str, NodeInfo]:
    """The models the change adds, edits or deletes, as they are in the change (deleted: as on main)."""
    out = {name: node for (kind, name), node in nodes.items() if kind != NodeKind.SOURCE and main.get((kind, name)) != node}
    out.update({name: node for (kind, name), node in main.items() if kind != NodeKind.SOURCE and (kind, name) not in nodes})
    return out


def _column_readers(commit: str, main_sha: str, schema: str, touched: dict[str, NodeInfo]
                    ) -> Callable[[str, list[str]], Any]:
    """The breaking-change warning's readers: column lineage (runner.lineage.column_readers) over the
    compiled project. Over main's (compiled once per main commit and process) when the change touches
    no model that reads the column's model; over the change's head when it does, so a reader the change
    already updated is read as updated (compiled once per saved head). Either way, the other when that
    one does not compile. Compiled and traced only when a column goes; runner.lineage caches each answer."""

    def readers(name: str, columns: list[str]) -> Any:
        from runner import lineage, runs

        below = any(name in node.depends_on for node in touched.values())
        for sha in dict.fromkeys(s for s in ((commit, main_sha) if below else (main_sha, commit)) if s):
            try:
                manifest = runs.manifest_for(sha, schema)
            except ProjectError:
                continue
            try:
                return lineage.column_readers(manifest, name, columns)
            except Exception:  # noqa: BLE001 - a warning's source failing must not fail the editor's checks
                log.exception("column lineage of %s at %s failed", name, sha)
                return None
        return None

    return readers


def _read(store: GitStore, blob: str) -> str | None:
    found = store.git.read(blob)
    return found[1].decode("utf-8", "replace") if found else None


def _rows(ref: str) -> list[tuple[tuple[str, str], NodeInfo | None, str]]:
    columns: dict[int, list[tuple[str, str | None]]] = {}
    for node_id, name, data_type in (IndexedColumn.objects.filter(node__ref=ref).order_by("node_id", "position")
                                     .values_list("node_id", "name", "data_type")):
        columns.setdefault(node_id, []).append((name, data_type or None))
    out = []
    rows = IndexedNode.objects.filter(ref=ref).values_list("id", "kind", "name", "sql_blob", "yml_blob", "depends_on",
                                                           "deleted")
    for pk, kind, name, sql_blob, yml_blob, depends_on, deleted in rows:
        node = None if deleted else NodeInfo(kind, name, sql_blob, tuple(depends_on or ()), tuple(columns.get(pk, ())))
        out.append(((kind, name), node, yml_blob))
    return out


def _main_nodes(store: GitStore, sha: str) -> dict[tuple[str, str], NodeInfo]:
    cached = _MAIN_NODES.get((store.path, sha))
    if cached is not None:
        return cached
    nodes = {}
    for key, node, yml_blob in _rows(index.MAIN):
        if node is None:
            continue
        if node.kind == NodeKind.SOURCE:
            schema, identifier = _source_yml(store, yml_blob).get(node.name, ("", ""))
            node = NodeInfo(node.kind, node.name, "", (), node.columns, schema, identifier)
        nodes[key] = node
    _MAIN_NODES.put((store.path, sha), nodes)
    return nodes


def _overlay(store: GitStore, branch: str, sha: str) -> dict[tuple[str, str], NodeInfo | None]:
    key = (store.path, branch, sha)
    cached = _OVERLAYS.get(key)
    if cached is None:
        cached = {k: node for k, node, _ in _rows(branch) if k[0] != NodeKind.SOURCE}
        _OVERLAYS.put(key, cached)
    return cached


def _source_yml(store: GitStore, blob: str) -> dict[str, tuple[str, str]]:
    cached = _SOURCE_YML.get(blob)
    if cached is None:
        cached = {}
        text = _read(store, blob) if blob else None
        if text:
            try:
                for src in parse_properties(text, "sources.yml").sources:
                    for table in src.tables:
                        cached[f"{src.name}.{table.name}"] = (src.schema or src.name, table.identifier or table.name)
            except ProjectFileError:
                pass
        _SOURCE_YML.put(blob, cached)
    return cached


def _context(store: GitStore, commit: str) -> _Context:
    cached = _CONTEXTS.get(commit)
    if cached is not None:
        return cached
    snap = store.snapshot(commit or None)
    project_blob = snap.blob_id("dbt_project.yml") or "" if commit else ""
    macros: list[tuple[str, str]] = []
    if project_blob:
        try:
            paths = parse_project_file(_read(store, project_blob) or "").macro_paths
        except ProjectFileError:
            paths = ["macros"]
        for root in paths:
            macros += [(p, e.oid) for p, e in snap.walk(root) if p.endswith(".sql") and e.is_blob]
    digest = hashlib.sha1(repr((project_blob, sorted(macros))).encode()).hexdigest()
    context = _Context(digest, project_blob, tuple(sorted(macros)))
    if commit:
        _CONTEXTS.put(commit, context)
    return context


def _environment(store: GitStore, context: _Context, warehouse: str, schema: str) -> tuple[Compiler, list[str]]:
    key = (context.key, warehouse, schema)
    cached = _ENVIRONMENTS.get(key)
    if cached is not None:
        return cached
    problems: list[str] = []
    text = _read(store, context.project_blob) if context.project_blob else None
    try:
        config = parse_project_file(text or project_skeleton(PROJECT_NAME)["dbt_project.yml"])
    except ProjectFileError as exc:
        problems.append(f"dbt_project.yml cannot be read ({exc}); vars and folder settings are not applied.")
        config = parse_project_file(project_skeleton(PROJECT_NAME)["dbt_project.yml"])
    macro_files = {path: _read(store, blob) or "" for path, blob in context.macros}
    target = Target(schema=schema, type=warehouse)
    try:
        compiler = Compiler(Project(config, {}, {}, macro_files, {}), target)
    except ProjectError as exc:
        problems.append(f"The project's macros cannot be loaded ({exc}); models that call them show as errors.")
        compiler = Compiler(Project(config, {}, {}, {}, {}), target)
    _ENVIRONMENTS.put(key, (compiler, problems))
    return compiler, problems


def clear_caches() -> None:
    """Forget every cached state (tests that reuse shas across repositories)."""
    from .checks import SUMMARIES

    for cache in (_MAIN_NODES, _OVERLAYS, _CONTEXTS, _ENVIRONMENTS, _VIEWS, _SOURCE_YML, SUMMARIES):
        cache.clear()
