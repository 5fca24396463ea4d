"""Column lineage over a compiled project: which columns of which parents make a model's column, and
which columns of its children read it. Plain Python (no Django), like the rest of the engine.

sqlglot's `lineage` follows a column through one query's CTEs, subqueries and joins down to the
tables it reads; the compiled SQL names every parent by its relation (`"analytics"."stg_orders"`), so a
table at the bottom of that walk maps back to a node of the manifest, whose own compiled SQL is the
next step. Ephemeral models are CTEs of their readers: the walk passes through them without a step.
`select *` is expanded from the relation columns handed in (`columns`): the yml's, or what the last
build measured; a column that cannot be placed is reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp, parse_one
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node as SqlNode
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from .compiler import Manifest

MAX_STEPS = 200  # columns visited in one walk
FAILURES = (SqlglotError, ValueError, KeyError, RecursionError)  # sqlglot raises the last three on odd SQL


@dataclass(frozen=True)
class ColumnKey:
    uid: str  # a node of the manifest, or "" for a table no node builds
    column: str
    relation: str = ""  # schema.identifier, for a table no node builds


@dataclass
class Step:
    """How one column of one node is made: its SQL expression and the parent columns it reads."""

    key: ColumnKey
    expression: str = ""
    transform: str = ""  # copy, rename, derived; "" for a seed, source or outside table (a leaf)
    parents: list[ColumnKey] = field(default_factory=list)
    error: str = ""


@dataclass
class ColumnGraph:
    focus: ColumnKey
    steps: dict[ColumnKey, Step] = field(default_factory=dict)
    children: dict[ColumnKey, list[ColumnKey]] = field(default_factory=dict)  # downstream: who reads it
    described: dict[ColumnKey, Step] = field(default_factory=dict)  # how the downstream columns are made
    truncated: bool = False
    errors: list[str] = field(default_factory=list)


def dialect_of(manifest: Manifest) -> str:
    return "postgres" if manifest.target.type == "postgres" else "duckdb"


class ColumnLineage:
    """Column lineage over one manifest; `columns` maps a uid to its known column names."""

    def __init__(self, manifest: Manifest, columns: Mapping[str, list[str]] | None = None):
        self.manifest = manifest
        self.dialect = dialect_of(manifest)
        self.by_relation = {(s.lower(), i.lower()): uid for uid, (s, i) in manifest.relations.items()}
        known: dict[str, list[str]] = {uid: list(cols) for uid, cols in (columns or {}).items()}
        for uid, node in manifest.nodes.items():
            if node.resource_type in ("model", "seed") and not known.get(uid) and node.columns:
                known[uid] = list(node.columns)
        for uid, src in manifest.project.sources.items():
            if not known.get(uid) and src.columns:
                known[uid] = list(src.columns)
        self.known = known
        self.measured = set((columns or {}).keys())
        # A yml may list only some columns; a schema that lacks one the SQL names fails to qualify. So
        # a walk tries every known column first, then only the measured ones, then none (no `*`).
        self.schemas = [self._schema(known), self._schema({u: c for u, c in known.items() if u in self.measured}), {}]
        self._cache: dict[str, dict[str, SqlNode]] = {}
        self._children: dict[str, list[str]] | None = None
        self._refs: dict[str, tuple[set[str], bool]] = {}

    # ------------------------------------------------------------------ one node
    def buildable(self, uid: str) -> bool:
        node = self.manifest.nodes.get(uid)
        return node is not None and node.resource_type == "model" and uid in self.manifest.compiled

    def _schema(self, known: Mapping[str, list[str]]) -> dict[str, dict[str, dict[str, str]]]:
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for uid, cols in known.items():
            if uid in self.manifest.relations and cols:
                s, i = self.manifest.relations[uid]
                schema.setdefault(s, {})[i] = {c: "text" for c in cols}
        return schema

    def _walk(self, uid: str, column: str | None) -> SqlNode | dict[str, SqlNode]:
        failure: BaseException | None = None
        tried: list[dict[str, Any]] = []
        for schema in self.schemas:
            if schema in tried:
                continue
            tried.append(schema)
            try:
                return lineage(column, self.manifest.compiled[uid], schema=schema, dialect=self.dialect)
            except FAILURES as err:
                failure = failure or err
        assert failure is not None
        raise failure

    def step(self, key: ColumnKey) -> Step:
        """The expression making `key` and the parent columns it reads (a leaf for seeds and sources)."""
        if not self.buildable(key.uid):
            return Step(key)
        try:
            root = self._walk(key.uid, key.column)
        except FAILURES as err:
            return Step(key, error=f"{self.name(key.uid)}.{key.column}: {_short(err)}")
        assert isinstance(root, SqlNode)
        return Step(key, _expression(root, self.dialect), _transform(root, key.column), self._leaves(root))

    def _leaves(self, root: SqlNode) -> list[ColumnKey]:
        found: list[ColumnKey] = []
        for node in root.walk():
            if not isinstance(node.expression, exp.Table):
                continue
            table = node.expression
            column = node.name.rsplit(".", 1)[-1]
            uid = self.by_relation.get((table.db.lower(), table.name.lower()), "")
            key = ColumnKey(uid, column, "" if uid else ".".join(p for p in (table.db, table.name) if p))
            if key not in found:
                found.append(key)
        return found

    def all_columns(self, uid: str) -> dict[str, tuple[SqlNode, list[ColumnKey]]]:
        """Every output column of a model with the parent columns it reads (children's side)."""
        if uid not in self._cache:
            try:
                roots = self._walk(uid, None)
            except FAILURES:
                roots = {}
            assert isinstance(roots, dict)
            self._cache[uid] = roots
        return {name: (root, self._leaves(root)) for name, root in self._cache[uid].items()}

    def references(self, uid: str, parent: str) -> tuple[set[str], bool]:
        """The columns of `parent` that `uid`'s compiled SQL names anywhere (select list, joins, filters,
        grouping: a column the lineage of no output shows still fails the query when it goes), lower
        case; and whether it selects a `*` of `parent` that the known columns could not expand."""
        key = f"{uid}\0{parent}"
        if key not in self._refs:
            self._refs[key] = self._references(uid, parent)
        return self._refs[key]

    def _references(self, uid: str, parent: str) -> tuple[set[str], bool]:
        relation = tuple(p.lower() for p in self.manifest.relations.get(parent, ("", "")))
        sql = self.manifest.compiled.get(uid)
        if not sql or not relation[1]:
            return set(), False
        tree = None
        for schema in self.schemas:
            try:
                tree = qualify(parse_one(sql, dialect=self.dialect), schema=schema, dialect=self.dialect,
                               validate_qualify_columns=False, identify=False)
                break
            except FAILURES:
                continue
        if tree is None:
            return set(), False
        used: set[str] = set()
        star = False
        for scope in traverse_scope(tree):
            mine = {alias for alias, source in scope.sources.items() if isinstance(source, exp.Table)
                    and (source.db.lower(), source.name.lower()) == relation}
            if not mine:
                continue
            for column in scope.columns:
                if column.table in mine:
                    used.add(column.name.lower())
            for select in scope.expression.selects if isinstance(scope.expression, exp.Select) else []:
                if isinstance(select, exp.Star) or (isinstance(select, exp.Column) and isinstance(select.this, exp.Star)
                                                    and (not select.table or select.table in mine)):
                    star = True
        return used, star

    def name(self, uid: str) -> str:
        node = self.manifest.nodes.get(uid)
        if node is not None:
            return node.name
        src = self.manifest.project.sources.get(uid)
        return f"{src.source_name}.{src.name}" if src is not None else uid

    # ------------------------------------------------------------------ walks
    def upstream(self, uid: str, column: str, graph: ColumnGraph | None = None) -> ColumnGraph:
        """Walk from `column` of `uid` to the seeds, sources and outside tables it comes from."""
        focus = ColumnKey(uid, column)
        graph = graph or ColumnGraph(focus)
        todo = [focus]
        while todo:
            key = todo.pop(0)
            if key in graph.steps:
                continue
            if len(graph.steps) >= MAX_STEPS:
                graph.truncated = True
                break
            step = self.step(key)
            graph.steps[key] = step
            if step.error:
                graph.errors.append(step.error)
            todo.extend(p for p in step.parents if p not in graph.steps)
        return graph

    def readers(self, uid: str) -> list[str]:
        """The models whose compiled SQL reads `uid`: its children, with an ephemeral child replaced by
        that child's readers (its SQL is inlined there, so they name `uid` themselves)."""
        if self._children is None:
            children: dict[str, list[str]] = {}
            for child, node in self.manifest.nodes.items():
                if node.resource_type == "model":
                    for parent in node.depends_on:
                        children.setdefault(parent, []).append(child)
            self._children = children
        out: list[str] = []
        stack = list(reversed(self._children.get(uid, [])))
        while stack:
            child = stack.pop()
            if self.manifest.nodes[child].materialized == "ephemeral":
                stack.extend(reversed(self._children.get(child, [])))
            elif child not in out:
                out.append(child)
        return out

    def downstream(self, uid: str, column: str, graph: ColumnGraph | None = None,
                   max_models: int = 60) -> ColumnGraph:
        """Walk from `column` of `uid` to the columns of the models below that read it (reading the
        SQL of at most `max_models` models)."""
        focus = ColumnKey(uid, column)
        graph = graph or ColumnGraph(focus)
        todo, read = [focus], 0
        seen = {focus}
        while todo:
            key = todo.pop(0)
            for child in self.readers(key.uid):
                if not self.buildable(child):
                    continue
                if read >= max_models:
                    graph.truncated = True
                    return graph
                read += 1
                for name, (root, leaves) in self.all_columns(child).items():
                    if any(leaf.uid == key.uid and leaf.column.lower() == key.column.lower() for leaf in leaves):
                        target = ColumnKey(child, name)
                        graph.described.setdefault(target, Step(target, _expression(root, self.dialect),
                                                                _transform(root, name), leaves))
                        graph.children.setdefault(key, [])
                        if target not in graph.children[key]:
                            graph.children[key].append(target)
                        if target not in seen:
                            seen.add(target)
                            todo.append(target)
        return graph


def _expression(root: SqlNode, dialect: str) -> str:
    expression = root.expression
    if isinstance(expression, exp.Alias):
        expression = expression.this
    return expression.sql(dialect=dialect)[:500]


def _transform(root: SqlNode, column: str) -> str:
    expression = root.expression.this if isinstance(root.expression, exp.Alias) else root.expression
    if isinstance(expression, exp.Column):
        return "copy" if expression.name.lower() == column.lower() else "rename"
    return "derived"


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:300]
