"""Lineage on main: the model graph around a node (from the repository index), and where one column
comes from and goes to (from the compiled SQL, runner/engine/lineage.py).

- `model_graph(user, name, up=, down=)`: the nodes within `up` generations above and `down` below,
  each with its layer (negative above, positive below: the longest path to the focus inside the
  picture, so that every edge points to the right), and the edges between them. One query.
- `column_lineage(user, name, column, up=, down=)`: the columns it is made of, step by step down to
  seeds and sources, and the columns of the models below that read it. Compiled with main's
  manifest (runner.runs.manifest_for, cached per commit); `select *` is expanded from what the last
  production build measured, or from the yml's columns.

- `column_readers(manifest, name, columns)`: which models right below read each column, and how (the
  editor's and the review page's breaking-change warning, runner.validation).

The first two answer plain dicts, the same for the page and the API; portal adds the URLs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from django.db.models import Max

from models_service import access
from models_service.errors import InvalidInput, NotFound
from models_service.git_store import MAIN_REF
from models_service.index import MAIN
from models_service.models import IndexedNode, NodeKind
from models_service.repo import get_store
from runner.engine.errors import ProjectError
from runner.engine.lineage import ColumnGraph, ColumnKey, ColumnLineage
from runner.models import MEASURE_COMPLETE, MeasureKind, Measurement

MAX_DEPTH = 10
MAX_NODES = 400
KIND_ORDER = {NodeKind.SOURCE: 0, NodeKind.SEED: 1, NodeKind.MODEL: 2, "missing": 3}


def depth_param(value: Any, name: str, default: int) -> int:
    """A depth from a query string: 0..MAX_DEPTH, or a 400 that says so."""
    if value in (None, ""):
        return default
    try:
        depth = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} is a number of levels, 0 to {MAX_DEPTH}.", field=name) from None
    if not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"{name} is a number of levels, 0 to {MAX_DEPTH}.", field=name)
    return depth


# --------------------------------------------------------------------------- the model graph


def _rows() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    query = IndexedNode.objects.filter(ref=MAIN, deleted=False).values_list(
        "name", "kind", "materialized", "depends_on", "description", "owner")
    for name, kind, materialized, depends_on, description, owner in query:
        if name in rows and KIND_ORDER.get(rows[name]["kind"], 9) >= KIND_ORDER.get(kind, 9):
            continue  # a model wins over a seed of the same name (dbt forbids it; the index may not)
        rows[name] = {"name": name, "kind": kind, "materialized": materialized, "depends_on": depends_on or [],
                      "description": description, "owner": owner}
    return rows


def _reach(start: str, edges: dict[str, list[str]], depth: int) -> set[str]:
    seen, frontier = {start}, [start]
    for _ in range(depth):
        frontier = [n for f in frontier for n in edges.get(f, []) if n not in seen]
        seen.update(frontier)
        if not frontier:
            break
    seen.discard(start)
    return seen


def _layers(focus: str, members: set[str], towards: dict[str, list[str]]) -> dict[str, int]:
    """For each member, the longest path to `focus` through members, following `towards`."""
    inside = members | {focus}
    memo: dict[str, int] = {focus: 0}

    def length(node: str) -> int:
        stack, active = [node], {node}
        while stack:
            current = stack[-1]
            nexts = [n for n in towards.get(current, []) if n in inside and n not in active]
            pending = [n for n in nexts if n not in memo]
            if pending:  # a cycle in a broken index is cut at the node already on the path
                stack.extend(pending)
                active.update(pending)
                continue
            stack.pop()
            active.discard(current)
            memo.setdefault(current, max((memo[n] + 1 for n in nexts if n in memo), default=0))
        return memo[node]

    return {m: length(m) for m in members}


def model_graph(user: Any, name: str, *, up: int = 2, down: int = 2) -> dict[str, Any]:
    """The nodes around `name` on main and the edges between them, in layers (see the docstring)."""
    access.require(user, "catalog.view")
    rows = _rows()
    if name not in rows:
        raise NotFound(f"There is nothing named {name[:200]} on main.")
    parents = {n: list(r["depends_on"]) for n, r in rows.items()}
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    above = _reach(name, parents, up)
    below = _reach(name, children, down) - above
    layer = {name: 0}
    layer.update({n: -d for n, d in _layers(name, above, children).items()})
    layer.update(_layers(name, below, parents))
    members = sorted(layer, key=lambda n: (layer[n], n))
    truncated = len(members) > MAX_NODES
    if truncated:  # keep the nearest layers
        members = sorted(members, key=lambda n: (abs(layer[n]), layer[n], n))[:MAX_NODES]
    chosen = set(members)
    nodes = []
    for n in sorted(chosen, key=lambda n: (layer[n], n)):
        row = rows.get(n)
        nodes.append({
            "name": n, "kind": row["kind"] if row else "missing", "materialized": row["materialized"] if row else "",
            "description": (row["description"] or "")[:200] if row else "", "owner": row["owner"] if row else "",
            "layer": layer[n], "focus": n == name, "known": row is not None,
            "parents": len(parents.get(n, [])), "children": len(children.get(n, [])),
        })
    edges = [{"from": p, "to": c} for c in sorted(chosen) for p in parents.get(c, []) if p in chosen]
    return {"focus": name, "kind": rows[name]["kind"], "up": up, "down": down, "nodes": nodes, "edges": edges,
            "truncated": truncated,
            "more_above": any(p not in chosen for n in chosen if layer[n] == -up for p in parents.get(n, [])),
            "more_below": any(c not in chosen for n in chosen if layer[n] == down for c in children.get(n, []))}


# --------------------------------------------------------------------------- column lineage


def compiled_main() -> Any:
    from runner import runs
    from runner import warehouse as wh

    sha = get_store().tip(MAIN_REF)
    if sha is None:
        raise NotFound("The repository has no main branch yet.")
    try:
        return runs.manifest_for(sha, wh.production_schema())
    except ProjectError as err:
        raise InvalidInput(f"main does not compile, so its columns cannot be traced: {err.message}") from None


def uid_of(manifest: Any, name: str) -> str | None:
    project = manifest.project
    if "." in name:
        source_name, _, table = name.partition(".")
        return project.source_uid(source_name, table)
    uid = project.model_uid(name)
    return uid if uid in manifest.nodes else None


def measured_columns(models: list[str]) -> dict[str, list[str]]:
    """{model: [column]} from each model's latest production measurement (one query each way)."""
    last = (Measurement.objects.filter(MEASURE_COMPLETE, model__in=models, kind=MeasureKind.PRODUCTION).values("model")
            .annotate(last=Max("id")).values_list("last", flat=True))
    return {model: [str(c.get("name")) for c in columns or [] if c.get("name")]
            for model, columns in Measurement.objects.filter(pk__in=list(last)).values_list("model", "columns")}


def tracer(manifest: Any, uid: str) -> ColumnLineage:
    """Column lineage over `manifest`, knowing the measured columns of `uid`'s ancestors and descendants."""
    graph = manifest.graph
    if uid in graph:
        around = {uid} | graph.ancestors(uid) | graph.descendants(uid)
    else:  # a source: the graph holds only what the project builds
        readers = {u for u, n in manifest.nodes.items() if uid in n.depends_on and u in graph}
        around = {uid} | readers | {d for r in readers for d in graph.descendants(r)}
    names = {manifest.nodes[u].name: u for u in around if u in manifest.nodes}
    measured = measured_columns(sorted(names))
    return ColumnLineage(manifest, {names[m]: cols for m, cols in measured.items()})


def _columns_of(lin: ColumnLineage, uid: str) -> list[str]:
    return list(lin.known.get(uid, []))


def column_lineage(user: Any, name: str, column: str, *, up: bool = True, down: bool = True) -> dict[str, Any]:
    """Where `column` of `name` comes from and which columns below read it (see the docstring)."""
    access.require(user, "catalog.view")
    column = (column or "").strip()
    if not column or len(column) > 200:
        raise InvalidInput("Choose a column.", field="column")
    manifest = compiled_main()
    uid = uid_of(manifest, name)
    if uid is None:
        raise NotFound(f"There is no model, seed or source {name[:200]} on main.")
    lin = tracer(manifest, uid)
    known = _columns_of(lin, uid)
    match = next((c for c in known if c.lower() == column.lower()), None)
    if known and match is None:
        raise InvalidInput(f"{name} has no column {column[:200]}: it has {', '.join(known[:30])}.", field="column")
    column = match or column
    graph = ColumnGraph(ColumnKey(uid, column))
    if up:
        lin.upstream(uid, column, graph)
        focus = graph.steps.get(graph.focus)
        if focus is not None and focus.error and "Cannot find column" in focus.error and not known:
            raise InvalidInput(f"{name} has no column {column[:200]}.", field="column")
    if down:
        lin.downstream(uid, column, graph)
    return _column_picture(lin, graph)


def _column_picture(lin: ColumnLineage, graph: ColumnGraph) -> dict[str, Any]:
    def ident(key: ColumnKey) -> str:
        return f"{lin.name(key.uid) if key.uid else key.relation}.{key.column}"

    def kind(key: ColumnKey) -> str:
        if not key.uid:
            return "table"
        node = lin.manifest.nodes.get(key.uid)
        return node.resource_type if node is not None else "source"

    parents_of: dict[ColumnKey, list[ColumnKey]] = {k: s.parents for k, s in graph.steps.items()}
    layer: dict[ColumnKey, int] = {graph.focus: 0}
    # Longest path, so that a column read twice sits left of both readers.
    for key in _longest(graph.focus, parents_of):
        layer[key[0]] = -key[1]
    for key, depth in _longest(graph.focus, graph.children):
        layer[key] = depth
    keys = sorted(layer, key=lambda k: (layer[k], ident(k)))
    nodes = []
    for key in keys:
        step = graph.steps.get(key) or graph.described.get(key)
        model = lin.name(key.uid) if key.uid else key.relation
        nodes.append({"id": ident(key), "model": model, "column": key.column, "kind": kind(key),
                      "layer": layer[key], "focus": key == graph.focus, "known": bool(key.uid),
                      "expression": step.expression if step else "", "transform": step.transform if step else "",
                      "error": step.error if step else ""})
    edges = [{"from": ident(p), "to": ident(k)} for k, ps in parents_of.items() for p in ps]
    edges += [{"from": ident(k), "to": ident(c)} for k, cs in graph.children.items() for c in cs]
    return {"focus": ident(graph.focus), "model": lin.name(graph.focus.uid), "column": graph.focus.column,
            "nodes": nodes, "edges": edges, "truncated": graph.truncated, "errors": graph.errors,
            "upstream": [n for n in nodes if n["layer"] < 0], "downstream": [n for n in nodes if n["layer"] > 0]}


def _longest(start: ColumnKey, edges: dict[ColumnKey, list[ColumnKey]]) -> list[tuple[ColumnKey, int]]:
    """Each node reachable from `start` along `edges` with its longest distance (edges form a DAG)."""
    order: list[ColumnKey] = []
    seen: set[ColumnKey] = set()
    stack: list[tuple[ColumnKey, bool]] = [(start, False)]
    while stack:  # reverse post-order: a topological order from `start`
        key, done = stack.pop()
        if done:
            order.append(key)
            continue
        if key in seen:
            continue
        seen.add(key)
        stack.append((key, True))
        stack.extend((n, False) for n in edges.get(key, []) if n not in seen)
    dist = {start: 0}
    for key in reversed(order):
        for n in edges.get(key, []):
            dist[n] = max(dist.get(n, 0), dist.get(key, 0) + 1)
    return [(k, d) for k, d in dist.items() if k != start]


def column_users(user: Any, name: str, column: str) -> list[dict[str, Any]]:
    """The columns of models below that read `column` of `name` (what a rename or removal breaks)."""
    return column_lineage(user, name, column, up=False)["downstream"]


# --------------------------------------------------------------------------- what a removal breaks

MAX_READERS = 200  # models right below read for a breaking change
_READERS: OrderedDict[tuple[int, str, tuple[str, ...]], tuple[Any, dict[str, list[dict[str, Any]]]]] = OrderedDict()
_READERS_LOCK = threading.Lock()


def column_readers(manifest: Any, name: str, columns: list[str]) -> dict[str, list[dict[str, Any]]] | None:
    """For each of `columns` (the columns `name` had), the models right below that read it, by sqlglot
    over `manifest`'s compiled SQL: {column in lower case: [{"model", "columns", "star", "elsewhere"}]}.
    `columns`: the reader's columns made from it (column lineage); `star`: it selects `*` of `name`, so
    it reads every column; `elsewhere`: it names the column in a join, filter or grouping. A column
    no model reads is left out. None when `name` is not in the manifest. Cached per manifest."""
    uid = uid_of(manifest, name)
    if uid is None:
        return None
    key = (id(manifest), uid, tuple(columns))
    with _READERS_LOCK:
        if key in _READERS:
            _READERS.move_to_end(key)
            return _READERS[key][1]
    nodes = manifest.nodes
    probe = ColumnLineage(manifest, {})
    readers = probe.readers(uid)[:MAX_READERS]
    around = {uid, *readers, *(p for r in readers for p in nodes[r].depends_on)}
    names = {nodes[u].name: u for u in around if u in nodes}
    known = {names[m]: cols for m, cols in measured_columns(sorted(names)).items()}
    known[uid] = list(columns)
    lin = ColumnLineage(manifest, known)
    wanted = {c.lower(): c for c in columns}
    found: dict[str, list[dict[str, Any]]] = {}
    for child in readers:
        if not lin.buildable(child):
            continue
        made: dict[str, list[str]] = {}
        for output, (_, leaves) in lin.all_columns(child).items():
            for leaf in leaves:
                if leaf.uid == uid and leaf.column.lower() in wanted and output not in made.setdefault(leaf.column.lower(), []):
                    made[leaf.column.lower()].append(output)
        named, star = lin.references(child, uid)
        for low in wanted:
            outputs = made.get(low, [])
            if outputs or star or low in named:
                found.setdefault(low, []).append({"model": nodes[child].name, "columns": outputs, "star": star,
                                                  "elsewhere": low in named and not outputs})
    with _READERS_LOCK:
        _READERS[key] = (manifest, found)  # the manifest is kept with its answer, so its id is not reused
        while len(_READERS) > 64:
            _READERS.popitem(last=False)
    return found
