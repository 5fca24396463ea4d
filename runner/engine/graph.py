"""The dependency graph and dbt's selection syntax (plain Python, no networkx needed at this size)."""

from __future__ import annotations

import fnmatch
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass

SELECTOR_RE = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<body>[^+]+?)(?:\+(?P<down>\d*))?$")


class Graph:
    """Directed graph given as {node: [parents]}. Edges parent -> child."""

    def __init__(self, parents: dict[str, list[str]]):
        self.parents = {n: [p for p in ps if p in parents] for n, ps in parents.items()}
        self.children: dict[str, list[str]] = {n: [] for n in parents}
        for node, ps in self.parents.items():
            for p in ps:
                self.children[p].append(node)

    def __contains__(self, node: str) -> bool:
        return node in self.parents

    def _walk(self, start: str, edges: dict[str, list[str]], depth: int | None) -> set[str]:
        seen: set[str] = set()
        frontier = [start]
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            nxt = []
            for node in frontier:
                for other in edges.get(node, ()):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        return seen

    def ancestors(self, node: str, depth: int | None = None) -> set[str]:
        return self._walk(node, self.parents, depth)

    def descendants(self, node: str, depth: int | None = None) -> set[str]:
        return self._walk(node, self.children, depth)

    def find_cycle(self) -> list[str] | None:
        """A cycle as a list of nodes (first repeated at the end), or None."""
        color: dict[str, int] = {}
        for root in self.parents:
            if color.get(root):
                continue
            stack: list[tuple[str, Iterable[str]]] = [(root, iter(self.parents[root]))]
            path = [root]
            color[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    color[node] = 2
                elif color.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    return list(reversed(cycle))
                elif not color.get(nxt):
                    color[nxt] = 1
                    stack.append((nxt, iter(self.parents[nxt])))
                    path.append(nxt)
        return None

    def depths(self) -> dict[str, int]:
        """Longest distance from a root: parents always have a smaller depth than their children."""
        depth: dict[str, int] = {}
        for node in self.topological():
            depth[node] = max((depth[p] + 1 for p in self.parents[node]), default=0)
        return depth

    def topological(self) -> list[str]:
        indegree = {n: len(ps) for n, ps in self.parents.items()}
        ready = sorted(n for n, d in indegree.items() if d == 0)
        heapq.heapify(ready)
        order = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for child in self.children[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, child)
        return order

    def subgraph(self, nodes: set[str]) -> Graph:
        return Graph({n: [p for p in self.parents[n] if p in nodes] for n in self.parents if n in nodes})


@dataclass
class SelectableNode:
    unique_id: str
    name: str
    resource_type: str
    path: str
    fqn: list[str]
    tags: list[str]
    sources: list[tuple[str, str]]
    attached: list[str]  # for tests: the nodes they test


def _matches(node: SelectableNode, method: str, value: str) -> bool:
    if method in ("", "fqn"):
        if method == "" and ("/" in value or value.endswith(".sql")):
            return _matches(node, "path", value)
        if fnmatch.fnmatchcase(node.name, value):
            return True
        dotted = ".".join(node.fqn)
        return fnmatch.fnmatchcase(dotted, value) or fnmatch.fnmatchcase(".".join(node.fqn[1:]), value) or (
            "." in value and (dotted.startswith(value + ".") or ".".join(node.fqn[1:]).startswith(value + "."))
        )
    if method == "tag":
        return any(fnmatch.fnmatchcase(t, value) for t in node.tags)
    if method == "path":
        value = value.rstrip("/")
        return node.path == value or node.path.startswith(value + "/") or fnmatch.fnmatchcase(node.path, value)
    if method == "resource_type":
        return node.resource_type == value
    if method == "source":
        return node.unique_id.startswith("source.") and fnmatch.fnmatchcase(".".join(node.fqn[-2:]), value)
    if method == "test_type":
        return node.resource_type == "test"
    raise ValueError(f"unknown selector method '{method}:' (use a name, tag:, path:, source: or resource_type:)")


def select(graph: Graph, nodes: dict[str, SelectableNode], selectors: list[str] | None,
           exclude: list[str] | None = None) -> set[str]:
    """dbt's selection: space-separated terms are a union, comma-joined ones an intersection."""

    def atom(text: str) -> set[str]:
        m = SELECTOR_RE.match(text)
        if not m:
            raise ValueError(f"cannot read the selector {text!r}")
        body = m.group("body")
        method, _, value = body.partition(":") if ":" in body else ("", "", body)
        hits = {uid for uid, n in nodes.items() if _matches(n, method, value)}
        result = set(hits)
        for uid in hits:
            if m.group("at"):
                for d in graph.descendants(uid) | {uid}:
                    result |= graph.ancestors(d) | {d}
            if m.group("up") is not None:
                result |= graph.ancestors(uid, int(m.group("up")) if m.group("up") else None)
            if m.group("down") is not None:
                result |= graph.descendants(uid, int(m.group("down")) if m.group("down") else None)
        return result

    def expression(exprs: list[str]) -> set[str]:
        chosen: set[str] = set()
        for expr in exprs:
            for term in expr.split():
                parts = [atom(p) for p in term.split(",") if p]
                if parts:
                    chosen |= set.intersection(*parts)
        return chosen

    chosen = expression(selectors) if selectors else set(nodes)
    if exclude:
        chosen -= expression(exclude)
    return chosen
