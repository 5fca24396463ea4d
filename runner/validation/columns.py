"""What a query reads and what it outputs, as a small summary that can be cached by blob id.

`summarize` walks sqlglot's scopes once and keeps only names and offsets (no syntax tree is cached):
the tables read, every column reference with the sources it may come from, and the output columns,
where `*` stays a "star over these sources" until the columns of those sources are known.
`Resolver` then answers, for one state of the project, which columns a source has (`Known`),
and finds the column references that match none of them.

The rule against false errors: a column is only called unknown when every source it could come from
has known columns. When the columns come only from a yml file (which may list some of them), the
finding is a warning, not an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from .render import REF_DB, THIS_DB

Key = tuple[str, str]  # ("ref", model) | ("source", "src.table") | ("plain", "db.table") | ("scope", id) | ("other", "")
OTHER: Key = ("other", "")
PSEUDO_COLUMNS = frozenset({"rowid", "ctid", "oid", "xmin", "xmax", "cmin", "cmax", "tableoid"})


@dataclass(frozen=True)
class Output:
    name: str | None  # None: a star
    type: str | None = None
    origin: tuple[Key, str] | None = None  # a plain column reference: (its source, its name)
    star: tuple[Key, ...] = ()
    exclude: frozenset[str] = frozenset()
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class ColumnUse:
    name: str
    qualifier: str | None
    candidates: tuple[Key, ...]  # the sources it may come from (one when qualified)
    outer: tuple[Key, ...]  # sources of enclosing queries (a correlated subquery)
    span: tuple[int, int]


@dataclass(frozen=True)
class TableUse:
    key: Key
    parts: tuple[str, ...]  # (catalog, schema, name) as written, empty parts left out
    span: tuple[int, int]


@dataclass
class Summary:
    outputs: list[Output] | None = None
    scopes: dict[str, list[Output] | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # scope key -> "the CTE x" / "the subquery"
    columns: list[ColumnUse] = field(default_factory=list)
    tables: list[TableUse] = field(default_factory=list)
    select_span: tuple[int, int] | None = None  # the outer select list, for whole-query findings


def _span(node: exp.Expression) -> tuple[int, int] | None:
    meta = node.meta if isinstance(node, exp.Identifier) else None
    if meta and "start" in meta:
        return meta["start"], meta["end"] + 1
    found = [m for m in (i.meta for i in node.find_all(exp.Identifier)) if m and "start" in m]
    if not found:
        return None
    return min(m["start"] for m in found), max(m["end"] for m in found) + 1


def _inside(node: exp.Expression, ancestor: exp.Expression) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def summarize(tree: exp.Expression, sources: dict[str, str], dialect: str) -> Summary:
    """The summary of one query; `sources` maps the sentinel schemas of source() to "src.table"."""
    summary = Summary()
    try:
        scopes = traverse_scope(tree)
    except (RecursionError, ValueError, KeyError, AttributeError):
        return summary
    keys = {id(s): f"s{i}" for i, s in enumerate(scopes)}
    by_expression = {id(s.expression): s for s in scopes}
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}

    def key_of(source: object) -> Key:
        if isinstance(source, Scope):
            return ("scope", keys.get(id(source), "?"))
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            db, name = source.db, source.name
            if db == REF_DB:
                return ("ref", name)
            if db in sources:
                return ("source", sources[db])
            if db == THIS_DB:
                return OTHER
            return ("plain", ".".join(p for p in (source.catalog, db, name) if p))
        return OTHER

    def own_sources(scope: Scope) -> list[Key]:
        return [key_of(src) for _, (_node, src) in scope.selected_sources.items()]

    def outputs_of(scope: Scope) -> list[Output] | None:
        expr = scope.expression
        if isinstance(expr, exp.SetOperation):
            left = by_expression.get(id(expr.left))
            return outputs_of(left) if left is not None else None
        if not isinstance(expr, exp.Select):
            return None
        named = {k.lower(): src for k, src in scope.sources.items()}
        out: list[Output] = []
        for proj in expr.expressions:
            if isinstance(proj, exp.Star):
                excluded = frozenset(c.name.lower() for c in proj.args.get("except_") or [])
                out.append(Output(None, star=tuple(own_sources(scope)), exclude=excluded, span=_span(proj)))
                continue
            if isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star):
                src = named.get(proj.table.lower())
                excluded = frozenset(c.name.lower() for c in proj.this.args.get("except_") or [])
                out.append(Output(None, star=(key_of(src) if src is not None else OTHER,), exclude=excluded,
                                  span=_span(proj)))
                continue
            inner = proj.unalias()
            type_ = inner.to.sql(dialect) if isinstance(inner, exp.Cast) and inner.to is not None else None
            origin = None
            if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
                if inner.table:
                    src = named.get(inner.table.lower())
                    origin = (key_of(src), inner.name) if src is not None else None
                else:
                    own = own_sources(scope)
                    origin = (own[0], inner.name) if len(own) == 1 else None
            out.append(Output(proj.alias_or_name, type_, origin, span=_span(proj)))
        return out

    for scope in scopes:
        key = keys[id(scope)]
        summary.scopes[key] = outputs_of(scope)
        if scope.is_cte:
            summary.labels[key] = f"the CTE {scope.expression.parent.alias_or_name}" if scope.expression.parent else "a CTE"
        else:
            summary.labels[key] = "the subquery"
    root = scopes[-1] if scopes else None
    summary.outputs = summary.scopes.get(keys[id(root)]) if root is not None else None
    if root is not None and isinstance(root.expression, exp.Select) and root.expression.expressions:
        first, last = _span(root.expression.expressions[0]), _span(root.expression.expressions[-1])
        if first and last:
            summary.select_span = (first[0], last[1])

    seen: set[int] = set()
    for scope in scopes:
        named = {k.lower(): src for k, src in scope.sources.items()}
        aliases = {p.alias.lower(): p for p in scope.expression.expressions if isinstance(p, exp.Alias)} if isinstance(
            scope.expression, exp.Select) else {}
        outer_scopes = []
        parent = scope.parent if scope.is_subquery else None
        while parent is not None:
            outer_scopes.append(parent)
            parent = parent.parent
        for col in scope.columns:
            if id(col) in seen or isinstance(col.this, exp.Star):
                continue
            seen.add(id(col))
            span = _span(col.this)
            name = col.name
            if span is None or not name or name.lower() in PSEUDO_COLUMNS:
                continue
            if col.table:
                src = named.get(col.table.lower())
                if src is None:
                    for outer in outer_scopes:
                        src = {k.lower(): v for k, v in outer.sources.items()}.get(col.table.lower())
                        if src is not None:
                            break
                if src is None:
                    continue  # a struct field, or a name we cannot place: not judged
                summary.columns.append(ColumnUse(name, col.table, (key_of(src),), (), span))
                continue
            owner = aliases.get(name.lower())
            if owner is not None and not _inside(col, owner):
                continue  # may be that select alias (DuckDB allows them in WHERE, GROUP BY and later selects)
            outer = tuple(k for o in outer_scopes for k in own_sources(o))
            summary.columns.append(ColumnUse(name, None, tuple(own_sources(scope)), outer, span))

    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        parts = tuple(p for p in (table.catalog, table.db, table.name) if p)
        if len(parts) == 1 and parts[0].lower() in cte_names:
            continue
        span = _span(table) if table.args.get("alias") is None else None
        if span is None:
            pieces = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if isinstance(p, exp.Identifier)]
            spans = [s for s in (_span(p) for p in pieces) if s]
            span = (spans[0][0], spans[-1][1]) if spans else None
        if span is not None:
            summary.tables.append(TableUse(key_of(table), parts, span))
    return summary


# --------------------------------------------------------------------------- resolving against a project


@dataclass(frozen=True)
class Known:
    """The columns of a source: lower-case name -> (name, type). `exact`: read from SQL or a CSV header,
    not only from a yml file that may list just some of them."""

    columns: dict[str, tuple[str, str | None]]
    exact: bool
    label: str


@dataclass
class Finding:
    use: ColumnUse
    exact: bool
    labels: list[str]
    suggestion: str | None


class Resolver:
    """Columns of the sources of one query, given how to know a model's or a source's columns."""

    def __init__(self, summary: Summary, known: Callable[[Key], Known | None]):
        self.summary = summary
        self.known_of = known
        self._memo: dict[Key, Known | None] = {}

    def known(self, key: Key) -> Known | None:
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # a scope that reads itself stays unknown
        if key[0] == "scope":
            found = self.expand(self.summary.scopes.get(key[1]), self.summary.labels.get(key[1], "the subquery"))
        elif key[0] == "other":
            found = None
        else:
            found = self.known_of(key)
        self._memo[key] = found
        return found

    def expand(self, outputs: list[Output] | None, label: str) -> Known | None:
        if outputs is None:
            return None
        columns: dict[str, tuple[str, str | None]] = {}
        exact = True
        for out in outputs:
            if out.name is not None:
                type_ = out.type
                if type_ is None and out.origin is not None:
                    parent = self.known(out.origin[0])
                    type_ = parent.columns.get(out.origin[1].lower(), (None, None))[1] if parent else None
                columns.setdefault(out.name.lower(), (out.name, type_))
                continue
            for key in out.star:
                parent = self.known(key)
                if parent is None:
                    return None
                exact = exact and parent.exact
                for low, value in parent.columns.items():
                    if low not in out.exclude:
                        columns.setdefault(low, value)
        return Known(columns, exact, label)

    def outputs(self) -> Known | None:
        return self.expand(self.summary.outputs, "this model")

    def unknown_columns(self) -> list[Finding]:
        findings = []
        for use in self.summary.columns:
            low = use.name.lower()
            knowns = [self.known(k) for k in use.candidates]
            if not knowns or any(k is None for k in knowns) or any(low in k.columns for k in knowns if k):
                continue
            outer = [self.known(k) for k in use.outer]
            if any(k is None for k in outer) or any(low in k.columns for k in outer if k):
                continue
            everything = [k for k in knowns + outer if k is not None]
            names = [v[0] for k in everything for v in k.columns.values()]
            close = difflib.get_close_matches(use.name, names, n=1, cutoff=0.6) or difflib.get_close_matches(
                low, [n.lower() for n in names], n=1, cutoff=0.6)
            suggestion = None
            if close:
                suggestion = next((n for n in names if n.lower() == close[0].lower()), close[0])
            findings.append(Finding(use, all(k.exact for k in everything), [k.label for k in knowns], suggestion))
        return findings
