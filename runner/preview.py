"""Preview: the first rows of a model as the analyst has written it, before it is saved or built.

`preview_model(user, sql=..., name=..., change=..., limit=...)` compiles the text with the project of
the change's branch (main without a change) and runs it through the warehouse access layer
(runner/warehouse.py: read-only, time-limited, row-capped, DuckDB with external access off).

Deferral, as dbt's `--defer`: the analyst's own schema `dev_<username>` holds what they built with
"Test my model"; a parent the change modified (or added) is read from there, every other parent from
production (`DMAAS_PRODUCTION_SCHEMA`, default `analytics`), so a preview never needs the world rebuilt.

Errors come back as `PreviewFailed` with a code (compile_error, preview_failed, timeout, busy) and
the line and column in the analyst's own text: compile errors carry the source line already; errors
from the warehouse are mapped back through `Manifest.source_line` (None where Jinja changed the line
count and no honest mapping exists).

The same loading and compiling serves "Test my model" (runner/testrun.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from models_service import access
from models_service.changes import get_change
from models_service.errors import ServiceError
from models_service.git_store import MAIN_REF, names
from models_service.models import ChangeRequest
from models_service.project_files import ProjectFileError
from models_service.repo import get_store
from runner.engine.compiler import Compiler, Manifest, Target
from runner.engine.errors import ProjectError
from runner.engine.project import MappingSource, Node, Project, load_project, parse_test_target
from runner.engine.sqlcheck import check_query

from . import warehouse as wh

REF_RE = re.compile(r"""\bref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)""")
# PostgreSQL functions that reach files, other servers, settings or other sessions. The read-only
# transaction and a SELECT-only role are the real boundary; this refuses the obvious early and clearly.
PG_DENIED = ("pg_read", "pg_ls_", "pg_stat_file", "pg_file", "lo_", "dblink", "set_config", "current_setting",
             "pg_sleep", "pg_terminate", "pg_cancel", "pg_reload", "pg_rotate", "pg_promote", "pg_switch",
             "pg_create", "pg_drop", "pg_advisory", "pg_notify", "pg_logical", "query_to_xml", "table_to_xml",
             "cursor_to_xml", "schema_to_xml", "database_to_xml", "txid_", "pg_import", "pg_export")


class PreviewFailed(ServiceError):
    """A preview or test that cannot run: 400 (503 when the warehouse is busy), with the source position."""

    def __init__(self, code: str, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message, field="sql")
        self.code, self.line, self.column = code, line, column
        self.status = 503 if code == "busy" else 400

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field, "line": self.line,
                "column": self.column}


# --------------------------------------------------------------------------- the project at a commit

_blobs: OrderedDict[str, str] = OrderedDict()
_trees: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
_cache_lock = threading.Lock()
MAX_BLOBS, MAX_TREES = 50_000, 64


def project_files(store: Any, commit: str) -> dict[str, str]:
    """{path: text} of the project's files at `commit`; blobs are cached by id (a save changes one)."""
    with _cache_lock:
        listing = _trees.get(commit)
    if listing is None:
        listing = [(path, entry.oid) for path, entry in store.snapshot(commit).walk()
                   if path == "dbt_project.yml" or path.endswith((".sql", ".yml", ".yaml", ".csv", ".md"))]
        with _cache_lock:
            _trees[commit] = listing
            while len(_trees) > MAX_TREES:
                _trees.popitem(last=False)
    files = {}
    for path, oid in listing:
        with _cache_lock:
            text = _blobs.get(oid)
        if text is None:
            text = store.git.read_text(oid)
            with _cache_lock:
                _blobs[oid] = text
                while len(_blobs) > MAX_BLOBS:
                    _blobs.popitem(last=False)
        files[path] = text
    return files


@dataclass
class ProjectAt:
    """A branch's files at one commit, and which of them the change modified against main."""

    commit: str
    files: dict[str, str]
    modified_paths: set[str] = field(default_factory=set)


def project_at(change: ChangeRequest | None, commit: str | None = None) -> ProjectAt:
    """The project of a change's branch (at `commit`, default its tip) or of main."""
    store = get_store()
    main = store.tip(MAIN_REF)
    if change is None:
        if main is None:
            raise PreviewFailed("compile_error", "The repository has no main branch yet.")
        return ProjectAt(main, project_files(store, main))
    tip = commit or store.tip(change.branch) or change.head_sha
    if not tip:
        raise PreviewFailed("compile_error", "This change has no branch in the repository.")
    modified: set[str] = set()
    base = store.merge_base(main, tip) if main else None
    if base != tip:
        modified = set(store.changed_paths(base, tip))
    return ProjectAt(tip, project_files(store, tip), modified)


def dev_schema(user: Any) -> str:
    """`dev_<username>`: the analyst's own schema. Characters other than a-z, 0-9 and _ become _, with
    a short hash of the real name then, so that `a.b` and `a_b` never share a schema."""
    username = str(user.get_username())
    clean = re.sub(r"[^a-z0-9_]", "_", username.lower())
    if clean != username:
        clean = f"{clean[:40]}_{hashlib.sha1(username.encode()).hexdigest()[:6]}"
    return f"{wh.setting('DMAAS_SCHEMA_PREFIX', '')}dev_{clean}"[:63]  # the copy's prefix first, if any


# --------------------------------------------------------------------------- compiling with deferral


class DeferringCompiler(Compiler):
    """Nodes in `dev_nodes` resolve to the dev target's schema, every other node to production."""

    def __init__(self, project: Project, dev: Target, production_schema: str, dev_nodes: set[str]):
        self.production = Target(name="prod", schema=production_schema, type=dev.type)
        self.dev_nodes = dev_nodes
        super().__init__(project, dev)

    def relation_for(self, node: Node, config_calls: dict[str, Any] | None = None) -> tuple[str, str]:
        if node.unique_id in self.dev_nodes:
            return super().relation_for(node, config_calls)
        dev, self.target = self.target, self.production
        try:
            return super().relation_for(node, config_calls)
        finally:
            self.target = dev


@dataclass
class Compiled:
    manifest: Manifest
    uid: str
    dev_nodes: set[str]
    node_path: str


def _refs(text: str) -> set[str]:
    return {m.group(2) or m.group(1) for m in REF_RE.finditer(text)}


def _prune(project: Project, uid: str, with_tests: bool) -> None:
    """Keep the model, what it refs (transitively) and, with_tests, its tests: a preview of one model
    does not render the other 2,000. Refs computed in Jinja escape this; the caller then compiles all."""
    by_name = {n.name: u for u, n in project.nodes.items() if n.resource_type in ("model", "seed")}
    stack, keep, tests = [uid], set(), set()
    if with_tests:
        name = project.nodes[uid].name
        for tid, node in project.nodes.items():
            if node.resource_type != "test" or node.test is None:
                continue
            if node.test.kind == "singular":
                refs = _refs(node.raw_code)
                if name in refs:
                    tests.add(tid)
                    stack.extend(by_name[r] for r in refs if r in by_name)
            elif node.test.attached_uid == uid:
                tests.add(tid)
                target = parse_test_target(node.test.kwargs.get("to"))
                if target and target[0] == "ref" and target[1][1] in by_name:
                    stack.append(by_name[target[1][1]])
    while stack:
        u = stack.pop()
        if u in keep:
            continue
        keep.add(u)
        stack.extend(by_name[r] for r in _refs(project.nodes[u].raw_code) if r in by_name)
    project.nodes = {u: n for u, n in project.nodes.items() if u in keep or u in tests}


def compile_model(at: ProjectAt, name: str, sql: str | None, *, schema: str, target_type: str,
                  with_tests: bool = False) -> Compiled:
    """Compile model `name` (with `sql` in place of its saved text, if given) for the dev schema."""

    def load(prune: bool) -> Compiled:
        files = dict(at.files)
        project = load_project(MappingSource(files))
        uid = project.model_uid(name)
        if uid is not None and not uid.startswith("model."):
            raise PreviewFailed("compile_error", f"{name} is a seed, not a model.")
        if uid is None:
            if sql is None:
                raise PreviewFailed("compile_error", f"There is no model {name} in this change.")
            folder = project.config.model_paths[0] if project.config.model_paths else "models"
            files[f"{folder}/{name}.sql"] = sql
            project = load_project(MappingSource(files))
            uid = project.model_uid(name)
            assert uid is not None
        elif sql is not None:
            project.nodes[uid].raw_code = sql
        node_path = project.nodes[uid].path
        if prune:
            _prune(project, uid, with_tests)
        elif not with_tests:
            project.nodes = {u: n for u, n in project.nodes.items() if n.resource_type != "test"}
        dev_nodes = {u for u, n in project.nodes.items() if n.path in at.modified_paths} | {uid}
        compiler = DeferringCompiler(project, Target(name="dev", schema=schema, type=target_type),
                                     wh.production_schema(), dev_nodes)
        return Compiled(compiler.compile(), uid, dev_nodes, node_path)

    try:
        try:
            return load(prune=True)
        except ProjectError as err:
            if "ref(" not in err.message:
                raise
            return load(prune=False)  # a ref the regex could not see: compile everything
    except ProjectFileError as err:
        raise _compile_failed(err, name) from None


def _compile_failed(err: ProjectFileError, name: str, node_path: str | None = None) -> PreviewFailed:
    own = err.path.endswith(f"/{name}.sql") if node_path is None else err.path == node_path
    message = f"{err.message}. {err.hint}".strip() if err.hint else err.message
    if not own:
        return PreviewFailed("compile_error", f"{err.path}{f' line {err.line}' if err.line else ''}: {message}")
    return PreviewFailed("compile_error", message, err.line)


def check_model_sql(compiled: Compiled, dialect: str) -> None:
    """One SELECT in the warehouse's dialect, and no dangerous functions; raises PreviewFailed."""
    manifest, uid = compiled.manifest, compiled.uid
    sql = manifest.compiled[uid]
    problem = check_query(sql, dialect)
    if problem is not None:
        column = problem.column
        if dialect == "duckdb" and problem.line is not None:
            column = _duckdb_syntax_column(sql)
        line = manifest.source_line(uid, problem.line)
        raise PreviewFailed("compile_error", problem.message, line, column if line else None)
    if dialect == "postgres":
        denied = _denied_function(sql)
        if denied:
            raise PreviewFailed("preview_failed", f"The preview does not allow the function {denied}(): it reaches "
                                "beyond the warehouse's tables.")


def _duckdb_syntax_column(sql: str) -> int | None:
    import duckdb

    try:
        duckdb.extract_statements(sql)
    except duckdb.Error as err:
        return wh._duckdb_position(str(err))[1]
    return None


def _denied_function(sql: str) -> str | None:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except Exception:  # noqa: BLE001 - check_query has judged the syntax already
        return None
    for node in tree.walk():
        if isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname.startswith(PG_DENIED):
                return fname
    return None


# --------------------------------------------------------------------------- the service


def preview_model(user: Any, *, sql: str, name: str, change: int | ChangeRequest | None = None,
                  limit: int = 100) -> dict[str, Any]:
    """Compile and run the model's text; the first `limit` rows (capped by DMAAS_PREVIEW_MAX_ROWS)."""
    access.require(user, "model.edit")
    if not (isinstance(name, str) and names.is_identifier(name)):
        names.model_name(name)  # raises InvalidName, saying why
    if not isinstance(sql, str) or not sql.strip():
        raise PreviewFailed("compile_error", "The model is empty: write one select query.")
    limit = max(1, min(int(limit), wh.preview_max_rows()))
    change_obj = get_change(user, change.pk if isinstance(change, ChangeRequest) else change) \
        if change is not None else None
    warehouse = wh.get_warehouse()
    at = project_at(change_obj)
    compiled = compile_model(at, name, sql, schema=dev_schema(user), target_type=warehouse.type)
    check_model_sql(compiled, warehouse.dialect)
    manifest, uid = compiled.manifest, compiled.uid
    compiled_sql = manifest.compiled[uid]
    try:
        result = warehouse.preview(compiled_sql, limit)
    except wh.PreviewError as err:
        line = manifest.source_line(uid, err.line)
        raise PreviewFailed(err.code, _explain(err.message, compiled, user), line,
                            err.column if line else None) from None
    mask_pii(user, result, compiled, name, warehouse.dialect)
    return {**result.as_dict(), "compiled_sql": compiled_sql}


# --------------------------------------------------------------------------- personal data


def mask_pii(user: Any, result: wh.QueryResult, compiled: Compiled, name: str, dialect: str) -> wh.QueryResult:
    """Mask the output columns that are confirmed PII: of the model itself (by name), or traced through
    sqlglot's column lineage to a confirmed column of a model or seed it reads. Where lineage cannot
    tell (`select *`, an unqualified column of a join), a column named as a parent's confirmed PII
    column is masked: a preview errs on the side of hiding. People with `pii.view` see the values, and
    that read is audited (runner.observe.pii.mask_columns)."""
    from .observe import pii

    manifest = compiled.manifest
    relations = {(schema.lower(), ident.lower()): manifest.nodes[uid].name
                 for uid, (schema, ident) in manifest.relations.items()
                 if uid in manifest.nodes and uid != compiled.uid}
    confirmed = pii.confirmed_by_model({name, *relations.values()})
    if not confirmed:
        return result
    own = confirmed.get(name, set())
    upstream = {c for model, cols in confirmed.items() if model != name for c in cols}
    traced = _traced_sources(manifest.compiled[compiled.uid], [c["name"] for c in result.columns], dialect) \
        if upstream else {}
    hit, sources = [], []
    for i, col in enumerate(result.columns):
        key = str(col["name"]).lower()
        leaves = traced.get(key)
        from_parents = [f"{relations[t]}.{c}" for t, c in leaves or () if t in relations
                        and c in confirmed.get(relations[t], ())]
        if leaves is None and key in upstream:  # lineage could not tell: the same name is enough
            from_parents = [f"{m}.{key}" for m, cols in confirmed.items() if m != name and key in cols]
        if key in own or from_parents:
            hit.append(i)
            sources.extend(from_parents)
    return pii.mask_columns(user, name, result, hit, where="preview", source="api", traced=sources)


def _traced_sources(sql: str, columns: list[str], dialect: str) -> dict[str, set[tuple[tuple[str, str], str]]]:
    """{output column: {((schema, table), column)}} from sqlglot's lineage. A column whose lineage
    does not end in named table columns (a star, an ambiguous name, a parse failure) is left out, and
    the caller falls back to names."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.lineage import lineage

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:  # noqa: BLE001 - the warehouse ran it; sqlglot may still not read every dialect
        return {}
    found: dict[str, set[tuple[tuple[str, str], str]]] = {}
    for column in dict.fromkeys(columns):
        try:
            node = lineage(column, tree, None, dialect=dialect)
        except Exception:  # noqa: BLE001 - lineage is best effort; names decide where it fails
            continue
        leaves: set[tuple[tuple[str, str], str]] = set()
        for step in node.walk():
            if step.downstream:
                continue
            leaf = step.name.rsplit(".", 1)[-1].strip('"').lower()
            if not isinstance(step.expression, exp.Table) or leaf == "*":
                if isinstance(step.expression, (exp.Placeholder, exp.Table)):
                    leaves = set()
                    break
                continue  # a literal or a function of nothing: no table behind it
            leaves.add(((step.expression.db.lower(), step.expression.name.lower()), leaf))
        else:
            found[column.lower()] = leaves
    return found


def _explain(message: str, compiled: Compiled, user: Any) -> str:
    """A missing relation that is a parent modified in this change: say how to build it."""
    if "does not exist" not in message:
        return message
    for u in compiled.dev_nodes - {compiled.uid}:
        node = compiled.manifest.nodes.get(u)
        if node is not None and node.name in message:
            return (f"{message} — {node.name} is changed in this change, so the preview reads it from your "
                    f"schema {dev_schema(user)}, where it has not been built yet: run \"Test my model\" on "
                    f"{node.name} first.")
    return message
