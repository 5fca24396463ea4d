"""The editor's checks of one model's text against one state of the project. Plain Python, no Django.

`ProjectView` is what the checks know of the project: its nodes (from the repository index), the
Jinja environment with the project's macros and vars (the engine's), and a way to read a blob. It
caches what it learns per state (a model's columns), and `SUMMARIES` caches the parse of every
model's SQL by blob id across states, so a keystroke renders and parses only the text being typed.
"""

from __future__ import annotations

import csv
import difflib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jinja2

from .columns import Key, Known, Resolver, Summary, summarize
from .diagnostics import ERROR, INFO, WARNING, Diagnostic, Fix, Result, Span
from .mapping import SourceMap
from .render import Call, render_model
from .statements import parse, statement_problem, syntax_problem, too_deep

MAX_STAR_DEPTH = 30  # models whose columns come through `select *` of `select *` of ...
MAX_READERS_SHOWN = 5  # models named per removed column

# name, the columns it had -> {column in lower case: [{"model", "columns", "star", "elsewhere"}]} or None
Readers = Callable[[str, list[str]], "dict[str, list[dict[str, Any]]] | None"]


@dataclass(frozen=True)
class NodeInfo:
    kind: str  # model | seed | source
    name: str  # model or seed name; a source as "source.table"
    sql_blob: str = ""  # the model's .sql or the seed's .csv
    depends_on: tuple[str, ...] = ()  # ref names, and sources as "source.table"
    columns: tuple[tuple[str, str | None], ...] = ()  # documented in yml: (name, data type)
    schema: str = ""  # sources: the warehouse schema
    identifier: str = ""  # sources: the table's name in the warehouse


class _LRU:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


_MISSING = object()
SUMMARIES = _LRU(50_000)  # (blob, environment key, dialect) -> Summary | None: names and offsets only


class ProjectView:
    def __init__(self, nodes: Iterable[NodeInfo], *, env: jinja2.Environment, macros: set[str], dialect: str,
                 target_schema: str, read_blob: Callable[[str], str | None], env_key: str = "",
                 baseline: dict[str, NodeInfo] | None = None, problems: Iterable[str] = (),
                 column_readers: Readers | None = None):
        self.models: dict[str, NodeInfo] = {}
        self.sources: dict[str, NodeInfo] = {}
        for node in nodes:
            (self.sources if node.kind == "source" else self.models)[node.name] = node
        self.env, self.macros, self.dialect, self.target_schema = env, macros, dialect, target_schema.lower()
        self.read_blob, self.env_key = read_blob, env_key
        self.baseline = baseline if baseline is not None else self.models  # what downstream models were written for
        self.problems = list(problems)
        # which models below read a column, by column lineage (runner.lineage.column_readers, over the
        # compiled project): the breaking-change warning's one source of truth
        self.column_readers = column_readers
        self._known: dict[str, Known | None] = {}
        self._blob_known: dict[tuple[str, str], Known | None] = {}
        self._lock = threading.Lock()
        self._columns_lock = threading.RLock()  # views are shared by the threads of a worker
        self._depth = 0

    # ------------------------------------------------------------------ lookups
    def source_identifier(self, source: str, table: str) -> str | None:
        node = self.sources.get(f"{source}.{table}")
        return node.identifier if node and node.identifier else None

    def parents(self, name: str) -> list[str]:
        node = self.models.get(name)
        return [d for d in node.depends_on if "." not in d] if node else []

    def match_plain(self, parts: tuple[str, ...]) -> Key | None:
        """A table named in plain SQL that is a model or a source of the project."""
        *prefix, table = parts
        schema = prefix[-1].lower() if prefix else None
        for node in self.sources.values():
            source_name, _, name = node.name.partition(".")
            if table.lower() in (name.lower(), (node.identifier or name).lower()) and (
                    schema in (source_name.lower(), (node.schema or source_name).lower())):
                return ("source", node.name)
        model = self.models.get(table) or next((m for m in self.models.values() if m.name.lower() == table.lower()), None)
        if model is not None and (schema is None or schema == self.target_schema
                                  or schema.startswith((f"{self.target_schema}_", "dev_", "ci_"))):
            return ("ref", model.name)
        if schema is None:
            matches = [n for n in self.sources.values() if (n.identifier or n.name.partition(".")[2]).lower() == table.lower()]
            if len(matches) == 1:
                return ("source", matches[0].name)
        return None

    # ------------------------------------------------------------------ columns
    def known(self, key: Key) -> Known | None:
        kind, name = key
        if kind == "ref":
            return self.model_known(name)
        if kind == "source":
            node = self.sources.get(name)
            if node is None or not node.columns:
                return None
            return Known({c.lower(): (c, t) for c, t in node.columns}, False, f"the source {name}")
        if kind == "plain":
            match = self.match_plain(tuple(name.split(".")))
            return self.known(match) if match else None
        return None

    def model_known(self, name: str) -> Known | None:
        with self._columns_lock:
            return self._model_known(name)

    def _model_known(self, name: str) -> Known | None:
        if name in self._known:
            return self._known[name]
        node = self.models.get(name)
        if node is None:
            return None
        self._known[name] = None  # a cycle in the project stays unknown instead of recursing
        found = self._node_known(node)
        self._known[name] = found
        return found

    def node_known(self, node: NodeInfo) -> Known | None:
        """The columns of one version of a model or seed: from its SQL (or CSV header), else its yml."""
        with self._columns_lock:
            return self._node_known(node)

    def _node_known(self, node: NodeInfo) -> Known | None:
        key = (node.sql_blob, node.name)
        if key in self._blob_known:
            return self._blob_known[key]
        documented = {c.lower(): (c, t) for c, t in node.columns}
        derived: Known | None = None
        if node.kind == "seed":
            header = self._csv_header(node.sql_blob)
            if header:
                derived = Known({h.lower(): (h, documented.get(h.lower(), (h, None))[1]) for h in header}, True, node.name)
        elif self._depth < MAX_STAR_DEPTH:
            summary = self.summary(node.sql_blob, node.name)
            if summary is not None:
                self._depth += 1
                try:
                    out = Resolver(summary, self.known).outputs()
                finally:
                    self._depth -= 1
                if out is not None and out.columns:
                    derived = Known({k: (n, t or documented.get(k, (n, None))[1]) for k, (n, t) in out.columns.items()},
                                    out.exact, node.name)
        found = derived or (Known(documented, False, node.name) if documented else None)
        self._blob_known[key] = found
        return found

    def summary(self, blob: str, name: str) -> Summary | None:
        if not blob:
            return None
        key = (blob, self.env_key, self.dialect)
        cached = SUMMARIES.get(key)
        if cached is not None:
            return cached or None
        text = self.read_blob(blob)
        summary = None
        if text is not None:
            rendered = render_model(text.replace("\r\n", "\n"), name, self.env, self.macros, self.source_identifier)
            sql = rendered.smap.output if rendered.smap else ""
            if rendered.smap is not None and too_deep(sql) is None:
                tree = parse(sql, self.dialect)
                if tree is not None:
                    summary = summarize(tree, rendered.sources, self.dialect)
        SUMMARIES.put(key, summary or False)
        return summary

    def _csv_header(self, blob: str) -> list[str]:
        text = self.read_blob(blob) if blob else None
        if not text:
            return []
        first = text.lstrip("\ufeff").split("\n", 1)[0]
        try:
            return [h.strip() for h in next(csv.reader(io.StringIO(first))) if h.strip()]
        except (csv.Error, StopIteration):
            return []


# --------------------------------------------------------------------------- the checks


class _Positions:
    def __init__(self, smap: SourceMap):
        self.smap = smap

    def src(self, start: int, end: int) -> Span:
        line, col = self.smap.position(start)
        end_line, end_col = self.smap.position(max(end, start))
        return Span(line, col, end_line, end_col)

    def line(self, line: int | None) -> Span:
        start, end = self.smap.line_span(line or 1)
        return self.src(start, end)

    def out(self, start: int, end: int) -> tuple[Span, bool]:
        s, e, exact = self.smap.span(start, end)
        return self.src(s, e), exact


def _call_span(pos: _Positions, call: Call) -> Span:
    if call.start is not None and call.end is not None:
        return pos.src(call.start, call.end)
    return pos.line(call.line)


def validate_text(text: str, name: str, view: ProjectView) -> Result:
    """Every diagnostic for `text`, the model `name` as typed, against the project `view`."""
    text = text.replace("\r\n", "\n")
    result = Result()
    diags = result.diagnostics
    rendered = render_model(text, name, view.env, view.macros, view.source_identifier)
    pos = _Positions(rendered.smap or SourceMap.identity(text))
    for problem in view.problems:
        diags.append(Diagnostic(WARNING, "jinja", problem, pos.line(1)))
    result.refs = sorted({c.name for c in rendered.calls if c.kind == "ref"})
    result.sources = sorted({c.name for c in rendered.calls if c.kind == "source"})
    _check_calls(rendered.calls, name, view, pos, diags)

    if rendered.problem is not None:
        p = rendered.problem
        if p.start is not None:
            span = pos.src(p.start, p.end or p.start + 1)
        else:
            span = pos.line(p.line)
            if p.word and p.line:
                lo, hi = pos.smap.line_span(p.line)
                at = text.find(p.word, lo, hi)
                if at >= 0:
                    span = pos.src(at, at + len(p.word))
        fixes = ()
        if p.suggestion and p.word and span.line == span.end_line:
            fixes = (Fix(f"Change to {p.suggestion}", span, p.suggestion),)
        diags.append(Diagnostic(ERROR, "jinja", p.message, span, fixes))
        return result

    smap = rendered.smap
    assert smap is not None
    sql = result.compiled = smap.output
    problem = too_deep(sql) or statement_problem(sql) or syntax_problem(sql, view.dialect)
    if problem is not None:
        message, fixes = problem.message, ()
        if problem.end > problem.start:
            span, exact = pos.out(problem.start, problem.end)
            if problem.fix and exact:
                fixes = (Fix(f"Change to {problem.fix}", span, problem.fix),)
            if problem.near and not exact:  # the text there came from Jinja: name what the analyst wrote
                s, e, _ = smap.span(problem.start, problem.end)
                message = f"Syntax error at {text[s:e].strip()[:60]}." + message.split(".", 1)[1]
        else:
            span = pos.line(pos.smap.position(pos.smap.char(problem.start)[0])[0] if sql else 1)
        diags.append(Diagnostic(ERROR, problem.code, message, span, fixes))
        return result

    tree = parse(sql, view.dialect)
    if tree is None:
        diags.append(Diagnostic(INFO, "columns_unknown", "The columns were not checked: the SQL checker could not "
                                "read this query (the warehouse can).", pos.line(1)))
        return result
    summary = summarize(tree, rendered.sources, view.dialect)
    resolver = Resolver(summary, view.known)
    _check_parents_known(rendered.calls, name, view, pos, diags)
    _check_columns(resolver, pos, diags)
    _check_plain_tables(summary, view, pos, diags)
    outputs = resolver.outputs()
    if outputs is not None:
        result.columns = [{"name": n, "type": t} for n, t in outputs.columns.values()]
    _check_breaking(name, summary, outputs, view, pos, diags)
    return result


def _check_calls(calls: list[Call], name: str, view: ProjectView, pos: _Positions, diags: list[Diagnostic]) -> None:
    models = sorted(view.models)
    reported: set[tuple[str, str]] = set()
    for call in calls:
        if (call.kind, call.name) in reported:
            continue
        reported.add((call.kind, call.name))
        span = _call_span(pos, call)
        if call.kind == "ref" and call.name not in view.models and call.name != name:
            close = difflib.get_close_matches(call.name, models, n=1)
            fixes = ()
            if close and call.name_start is not None:
                fixes = (Fix(f"Change to ref('{close[0]}')", pos.src(call.name_start, call.name_end or call.name_start),
                             close[0]),)
            hint = f" Did you mean ref('{close[0]}')?" if close else " Check the model's name in the model list."
            diags.append(Diagnostic(ERROR, "unknown_ref", f"There is no model called {call.name}.{hint}", span, fixes))
        elif call.kind == "source" and call.name not in view.sources:
            close = difflib.get_close_matches(call.name, sorted(view.sources), n=1)
            fixes = ()
            if close and call.start is not None:
                a, _, b = close[0].partition(".")
                fixes = (Fix(f"Change to source('{a}', '{b}')", span, f"source('{a}', '{b}')"),)
            a, _, b = call.name.partition(".")
            hint = (f" Did you mean source('{close[0].partition('.')[0]}', '{close[0].partition('.')[2]}')?" if close
                    else " Declare the table under sources: in a yml file, or check the spelling.")
            diags.append(Diagnostic(ERROR, "unknown_source", f"The source {a}.{b} is not declared.{hint}", span, fixes))
        elif call.kind == "ref":
            cycle = _cycle(call.name, name, view)
            if cycle:
                path = " → ".join([name, *cycle])
                diags.append(Diagnostic(ERROR, "cycle", f"ref('{call.name}') would make a circle: {path}. A model "
                                        "cannot read from a model that reads from it.", span))


def _cycle(start: str, name: str, view: ProjectView) -> list[str] | None:
    """The path start → ... → name through the project's refs, if there is one."""
    if start == name:
        return [name]
    previous: dict[str, str] = {start: ""}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for parent in view.parents(current):
            if parent in previous:
                continue
            previous[parent] = current
            if parent == name:
                path = [parent]
                while previous[path[-1]]:
                    path.append(previous[path[-1]])
                return list(reversed(path))
            queue.append(parent)
    return None


def _check_parents_known(calls: list[Call], name: str, view: ProjectView, pos: _Positions,
                         diags: list[Diagnostic]) -> None:
    seen: set[tuple[str, str]] = set()
    for call in calls:
        key = (call.kind, call.name)
        if key in seen or call.name == name:
            continue
        seen.add(key)
        exists = call.name in (view.models if call.kind == "ref" else view.sources)
        if exists and view.known(key) is None:
            what = call.name if call.kind == "ref" else f"the source {call.name}"
            diags.append(Diagnostic(INFO, "columns_unknown", f"The columns of {what} are not known yet (its SQL does "
                                    "not list them and its yml has none), so columns read from it are not checked.",
                                    _call_span(pos, call)))


def _check_columns(resolver: Resolver, pos: _Positions, diags: list[Diagnostic]) -> None:
    for finding in resolver.unknown_columns():
        span, exact = pos.out(*finding.use.span)
        where = " or ".join(finding.labels) if finding.labels else "the tables it reads"
        column = f"{finding.use.qualifier}.{finding.use.name}" if finding.use.qualifier else finding.use.name
        hint = f" Did you mean {finding.suggestion}?" if finding.suggestion else ""
        if finding.exact:
            message = f"There is no column {column} in {where}.{hint}"
        else:
            message = f"The column {column} is not among the documented columns of {where}.{hint}"
        fixes = (Fix(f"Change to {finding.suggestion}", span, finding.suggestion),) if finding.suggestion and exact else ()
        diags.append(Diagnostic(ERROR if finding.exact else WARNING, "unknown_column", message, span, fixes))


def _check_plain_tables(summary: Summary, view: ProjectView, pos: _Positions, diags: list[Diagnostic]) -> None:
    for table in summary.tables:
        if table.key[0] != "plain":
            continue
        span, exact = pos.out(*table.span)
        if not exact:
            continue  # written by a macro, not by the analyst
        written = ".".join(table.parts)
        match = view.match_plain(table.parts)
        if match is None:
            close = difflib.get_close_matches(table.parts[-1], sorted(view.models), n=1)
            hint = f" Did you mean the model {close[0]}?" if close else (
                " If it is a table the warehouse has, declare it as a source so the platform knows about it.")
            fixes = (Fix(f"Use {{{{ ref('{close[0]}') }}}}", span, f"{{{{ ref('{close[0]}') }}}}"),) if close else ()
            diags.append(Diagnostic(WARNING, "unknown_table", f"{written} is not a model or a source of this project.{hint}",
                                    span, fixes))
            continue
        if match[0] == "ref":
            replacement = f"{{{{ ref('{match[1]}') }}}}"
            message = (f"{written} is the model {match[1]}: write {replacement} so that the platform knows this model "
                       "depends on it, builds it first and tests against the right version.")
        else:
            a, _, b = match[1].partition(".")
            replacement = f"{{{{ source('{a}', '{b}') }}}}"
            message = f"{written} is the source {match[1]}: write {replacement} so that lineage and freshness know of it."
        diags.append(Diagnostic(WARNING, "plain_table", message, span, (Fix(f"Replace with {replacement}", span, replacement),)))


def _check_breaking(name: str, summary: Summary, outputs: Known | None, view: ProjectView, pos: _Positions,
                    diags: list[Diagnostic]) -> None:
    """A column the model had on main and no longer outputs, that a model right below reads (by column
    lineage: for one of its columns, in a join, filter or grouping, or through `select *`)."""
    base = view.baseline.get(name) or view.models.get(name)
    if base is None or outputs is None or not outputs.exact or view.column_readers is None:
        return
    old = view.node_known(base)
    if old is None or not old.exact:
        return
    removed = set(old.columns) - set(outputs.columns)
    if not removed:
        return
    readers = view.column_readers(name, [shown for shown, _ in old.columns.values()]) or {}
    hits = {column: readers[column] for column in removed if readers.get(column)}
    if not hits:
        return
    added = [k for k in outputs.columns if k not in old.columns]
    span = pos.out(*summary.select_span)[0] if summary.select_span else pos.line(1)
    parts = []
    for column, entries in sorted(hits.items()):
        shown = old.columns[column][0]
        who = _readers_text(entries)
        verb = "uses" if len(entries) == 1 else "use"
        if len(removed) == 1 and len(added) == 1:
            parts.append(f"renames {shown} to {outputs.columns[added[0]][0]}, which {who} {verb}")
            new_out = next((o for o in summary.outputs or [] if o.name and o.name.lower() == added[0] and o.span), None)
            if new_out is not None:
                span = pos.out(*new_out.span)[0]
        else:
            parts.append(f"removes {shown}, which {who} {verb}")
    diags.append(Diagnostic(WARNING, "breaking_change", "This version " + "; ".join(parts)
                            + ". Those models will fail when this change is deployed: update them in this change too.", span))


def _readers_text(entries: list[dict[str, Any]]) -> str:
    """order_totals (for total), customer_360 (through select *), report (in a join or filter)."""
    named = []
    for entry in entries[:MAX_READERS_SHOWN]:
        if entry.get("columns"):
            how = "for " + ", ".join(entry["columns"][:5])
        elif entry.get("star"):
            how = "through select *"
        else:
            how = "in a join, filter or grouping"
        named.append(f"{entry['model']} ({how})")
    if len(entries) > MAX_READERS_SHOWN:
        named.append(f"{len(entries) - MAX_READERS_SHOWN} more")
    return ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
