"""Run a compiled manifest on a warehouse: a pool of N threads takes nodes as their parents finish.

The runner never raises for a node: each ends as a NodeResult (success, error, skipped with its cause,
pass/warn/fail for tests). A node that errors, or a test that fails in `build`, skips its descendants.

Of the nodes ready to run, the one with the longest remaining path to the end of the graph (its own
estimated cost plus its costliest chain of descendants) starts first: the critical path. Ordering by
depth instead leaves a deep chain for last, run alone while the other threads idle.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from .adapters.base import Adapter
from .compiler import Manifest, test_query
from .data_tests import test_status
from .graph import Graph
from .seeds import read_seed


@dataclass
class NodeResult:
    unique_id: str
    resource_type: str
    name: str
    status: str  # success | error | skipped | pass | warn | fail
    seconds: float = 0.0
    rows: int | None = None
    failures: int | None = None
    message: str | None = None
    relation: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    test: dict[str, Any] | None = None
    cause: str | None = None  # for skipped: the node whose failure skipped this one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_error(self) -> bool:
        return self.status in ("error", "fail")


@dataclass
class RunOptions:
    command: str = "build"  # build | run | test | seed
    threads: int = 1
    full_refresh: bool = False
    on_result: Callable[[NodeResult], None] | None = None
    fail_fast: bool = False
    # Seconds per node from an earlier run (e.g. last hour's): better weights for the critical path
    # than the guesses of node_cost. Only the order of ready nodes depends on them.
    estimates: dict[str, float] | None = None
    # Deploys and production runs: a model's build and the error-severity tests that need only it
    # (and what is built before it) run in one transaction, committed only if those tests pass; else
    # rolled back, so the old relation keeps serving and the model ends "error" (its children skip).
    gate: bool = False


@dataclass
class RunSummary:
    results: list[NodeResult] = field(default_factory=list)
    elapsed: float = 0.0

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def ok(self) -> bool:
        return not any(r.is_error for r in self.results)


def execution_graph(manifest: Manifest, selected: set[str], command: str) -> Graph:
    """The nodes to execute and their order. In `build`, a model's tests sit between it and its children."""
    kinds = {"build": ("model", "seed", "test"), "run": ("model",), "test": ("test",), "seed": ("seed",)}[command]
    nodes = {
        uid for uid in selected
        if uid in manifest.nodes and manifest.nodes[uid].resource_type in kinds
        and manifest.nodes[uid].materialized != "ephemeral"
    }
    full = manifest.graph
    parents: dict[str, list[str]] = {}
    for uid in nodes:
        # depend on the nearest executed ancestors (ephemeral models are inlined, not executed)
        deps: list[str] = []
        stack = list(full.parents.get(uid, ()))
        seen: set[str] = set()
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            if p in nodes:
                deps.append(p)
            elif p in manifest.nodes and manifest.nodes[p].materialized == "ephemeral":
                stack.extend(full.parents.get(p, ()))
        parents[uid] = deps
    if command == "build":
        # dbt's rule: a test blocks each child of its parents that depends on all of the test's parents
        ancestors_cache: dict[str, set[str]] = {}
        for uid in nodes:
            node = manifest.nodes[uid]
            if node.resource_type != "test":
                continue
            tested = [p for p in node.depends_on if p in nodes]
            for parent in tested:
                for child in _executed_children(manifest, parent):
                    if child not in nodes or manifest.nodes[child].resource_type == "test":
                        continue
                    anc = ancestors_cache.get(child)
                    if anc is None:
                        anc = ancestors_cache[child] = full.ancestors(child)
                    if all(t in anc for t in node.depends_on) and uid not in parents[child]:
                        parents[child].append(uid)
    return Graph(parents)


# Relative cost guesses when no timings are known: a table (or seed, or incremental) reads and writes
# data; a view is only DDL, and a data test is one aggregate query over a table that is already built.
COST = {"table": 1.0, "incremental": 1.0, "seed": 1.0, "view": 0.05, "test": 0.05}


def node_cost(manifest: Manifest, uid: str, estimates: dict[str, float] | None = None) -> float:
    if estimates and uid in estimates:
        return max(float(estimates[uid]), 0.0)
    node = manifest.nodes[uid]
    kind = node.resource_type if node.resource_type in ("test", "seed") else node.materialized
    return COST.get(kind or "table", 1.0)


def critical_path(graph: Graph, cost: Callable[[str], float]) -> dict[str, float]:
    """For each node, its cost plus the costliest chain of descendants below it (the remaining path)."""
    remaining: dict[str, float] = {}
    for uid in reversed(graph.topological()):
        remaining[uid] = cost(uid) + max((remaining[c] for c in graph.children[uid]), default=0.0)
    return remaining


def _executed_children(manifest: Manifest, uid: str) -> set[str]:
    """Children of a node, looking through ephemeral models (they are inlined, never run)."""
    out: set[str] = set()
    stack = list(manifest.graph.children.get(uid, ()))
    while stack:
        child = stack.pop()
        node = manifest.nodes.get(child)
        if node is not None and node.materialized == "ephemeral" and node.resource_type == "model":
            stack.extend(manifest.graph.children.get(child, ()))
        else:
            out.add(child)
    return out


class Executor:
    def __init__(self, manifest: Manifest, adapter: Adapter, options: RunOptions):
        self.manifest, self.adapter, self.options = manifest, adapter, options
        self._schemas_made: set[str] = set()
        self._schema_lock = threading.Lock()
        self._gates: dict[str, list[str]] = {}  # model -> the tests run inside its transaction
        self._gated: dict[str, NodeResult] = {}  # test -> its result, from its model's transaction

    def _plan_gates(self, graph: Graph) -> None:
        """Each gated model's tests: those among the run's nodes whose other parents are its ancestors
        (built, or deferred, before it), so they can run inside its transaction."""
        ancestors: dict[str, set[str]] = {}
        for uid in graph.parents:
            node = self.manifest.nodes[uid]
            if node.resource_type != "test":
                continue
            models = [p for p in node.depends_on if p in graph.parents
                      and self.manifest.nodes[p].resource_type == "model"]
            for model in models:
                others = [p for p in graph.parents[uid] if p != model]
                if others and model not in ancestors:
                    ancestors[model] = graph.ancestors(model)
                if all(o in ancestors[model] for o in others):
                    self._gates.setdefault(model, []).append(uid)
                    break

    def run(self, selected: set[str]) -> RunSummary:
        start = time.monotonic()
        self.adapter.prime_catalog()
        graph = execution_graph(self.manifest, selected, self.options.command)
        summary = RunSummary()
        if self.options.gate:
            self._plan_gates(graph)
        remaining = critical_path(graph, lambda u: node_cost(self.manifest, u, self.options.estimates))
        waiting = {uid: len(ps) for uid, ps in graph.parents.items()}
        # a min-heap: the longest remaining path first, then the name (a stable order between runs)
        ready = [(-remaining[u], u) for u, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        skipped: dict[str, str] = {}
        done: set[str] = set()
        threads = max(1, self.options.threads)

        def finish(result: NodeResult) -> None:
            summary.results.append(result)
            done.add(result.unique_id)
            if self.options.on_result:
                self.options.on_result(result)
            blocks = result.is_error and not (result.status == "fail" and self.options.command == "test")
            if blocks:
                for d in graph.descendants(result.unique_id):
                    skipped.setdefault(d, result.unique_id)
            for child in graph.children[result.unique_id]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (-remaining[child], child))

        def settled(uid: str) -> bool:
            """Finish a node that needs no SQL of its own (gated, or skipped); False if it must run."""
            if uid in self._gated:  # tested inside its model's transaction: its own result
                finish(self._gated[uid])
                return True
            if uid in skipped:
                finish(self._skipped(uid, skipped[uid]))
                return True
            return False

        if threads == 1:
            # One node at a time: in this thread, in the same order a pool of one would take them.
            # A worker's node (runner.nodes) is a one-node run; a pool would cost a thread per node.
            while ready:
                _, uid = heapq.heappop(ready)
                if not settled(uid):
                    finish(self.safe_run(uid))
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dmaas") as pool:
                running: dict[Future[NodeResult], str] = {}
                while ready or running:
                    while ready and len(running) < threads:
                        _, uid = heapq.heappop(ready)
                        if not settled(uid):
                            running[pool.submit(self.safe_run, uid)] = uid
                    if not running:
                        continue
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        running.pop(fut)
                        finish(fut.result())
        summary.elapsed = time.monotonic() - start
        return summary

    def _skipped(self, uid: str, cause: str) -> NodeResult:
        node = self.manifest.nodes[uid]
        cause_node = self.manifest.nodes.get(cause)
        return NodeResult(
            unique_id=uid, resource_type=node.resource_type, name=node.name, status="skipped",
            message=f"skipped because {cause_node.name if cause_node else cause} failed", cause=cause,
            test=self._test_meta(uid),
        )

    def _test_meta(self, uid: str) -> dict[str, Any] | None:
        info = self.manifest.nodes[uid].test
        if info is None:
            return None
        return {"kind": info.kind, "model": info.model, "column": info.column, "kwargs": info.kwargs}

    def _ensure_schema(self, schema: str, identifier: str | None = None) -> None:
        """Create the node's schema once per run; not at all where the adapter's catalog already holds
        a relation in it (a worker's one-node runs share the catalog while its process keeps the file,
        so only the first node of a schema pays a statement). Should the schema be gone all the same
        (dropped behind the catalog's back), the build fails and safe_run creates it and tries once more."""
        with self._schema_lock:
            if schema in self._schemas_made:
                return
            if not self.adapter.schema_known(schema, identifier):
                self.adapter.create_schema(schema)
            self._schemas_made.add(schema)

    def _recreate_schema(self, schema: str) -> None:
        with self._schema_lock:
            self.adapter.forget_schema(schema)
            self.adapter.create_schema(schema)
            self._schemas_made.add(schema)

    def safe_run(self, uid: str) -> NodeResult:
        """Run one node; every exception becomes an error result with the warehouse's message."""
        node = self.manifest.nodes[uid]
        started = time.time()
        t0 = time.monotonic()
        result = NodeResult(unique_id=uid, resource_type=node.resource_type, name=node.name, status="error",
                            started_at=started, test=self._test_meta(uid))
        if uid in self._gated:
            return self._gated[uid]
        try:
            if node.resource_type == "test":
                self._run_test(uid, result)
            else:
                schema, identifier = self.manifest.relations[uid]
                result.relation = f"{schema}.{identifier}"
                self._ensure_schema(schema, identifier)
                if node.resource_type == "model":
                    # syntax is checked here, in the worker threads, where it overlaps other
                    # models' SQL; a model that is not one valid query never reaches the warehouse
                    self.manifest.check_sql(uid)
                try:
                    result.rows = self._build(uid, schema, identifier)
                except Exception as exc:
                    if not schema_missing(exc, schema):
                        raise
                    # the catalog said the schema was there, but it was dropped (a CI schema, by hand)
                    with suppress(Exception):  # no transaction may be open
                        self.adapter.execute("rollback")
                    self._recreate_schema(schema)
                    result.rows = self._build(uid, schema, identifier)
                result.status = "success"
        except Exception as exc:  # noqa: BLE001 - a node's failure is a result, never a crash of the run
            result.status = "error"
            result.message = _clean_error(exc)
            try:
                self.adapter.execute("rollback")
            except Exception:  # noqa: BLE001 - no transaction was open
                pass
        result.seconds = round(time.monotonic() - t0, 3)
        result.finished_at = time.time()
        return result

    def _build(self, uid: str, schema: str, identifier: str) -> int | None:
        node = self.manifest.nodes[uid]
        if node.resource_type == "seed":
            columns, rows = read_seed(node.raw_code, node.config.get("column_types"),
                                      keep_null_word=self.adapter.type == "duckdb")
            return self.adapter.load_seed(schema, identifier, columns, rows)
        if uid in self._gates:
            return self._gated_build(uid, schema, identifier)
        return self._materialize(uid, schema, identifier)

    def _materialize(self, uid: str, schema: str, identifier: str) -> int | None:
        node = self.manifest.nodes[uid]
        sql = self.manifest.compiled[uid]
        kind = node.materialized
        if kind == "view":
            self.adapter.build_view(schema, identifier, sql)
            return None
        if kind == "table":
            return self.adapter.build_table(schema, identifier, sql)
        if kind == "incremental":
            full_refresh = node.config.get("full_refresh")
            if full_refresh is None:
                full_refresh = self.options.full_refresh
            existing = self.adapter.relation_type(schema, identifier)
            if existing != "table" or full_refresh:
                return self.adapter.build_table(schema, identifier, self.manifest.sql_for(uid, incremental=False))
            return self.adapter.build_incremental(schema, identifier, self.manifest.sql_for(uid, incremental=True),
                                                  node.config.get("unique_key"))
        raise ValueError(f"unknown materialization '{kind}' (use view, table, incremental or ephemeral)")

    def _gated_build(self, uid: str, schema: str, identifier: str) -> int | None:
        """Build and test in one transaction; raise GateClosed (rolled back) if an error test fails."""
        results = []
        try:
            with self.adapter.transaction():
                rows = self._materialize(uid, schema, identifier)
                for test in self._gates[uid]:
                    results.append(self._test_result(test))
                failed = [r for r in results if r.status in ("fail", "error")]
                if failed:
                    raise GateClosed(failed)
        except BaseException:
            self.adapter.forget(schema, identifier)
            raise
        finally:
            for r in results:
                self._gated[r.unique_id] = r
        return rows

    def _test_result(self, uid: str) -> NodeResult:
        node = self.manifest.nodes[uid]
        t0 = time.monotonic()
        result = NodeResult(unique_id=uid, resource_type="test", name=node.name, status="error",
                            started_at=time.time(), test=self._test_meta(uid))
        try:
            self._run_test(uid, result)
        except Exception as exc:  # noqa: BLE001 - a test's failure is its result
            result.status, result.message = "error", _clean_error(exc)
        result.seconds = round(time.monotonic() - t0, 3)
        result.finished_at = time.time()
        return result

    def _run_test(self, uid: str, result: NodeResult) -> None:
        node = self.manifest.nodes[uid]
        if node.test and node.test.kind == "singular":
            self.manifest.check_sql(uid)
        failures, should_warn, should_error = self.adapter.run_test(test_query(self.manifest, uid))
        result.failures = failures
        result.status = test_status(failures, should_warn, should_error, node.config.get("severity", "error"))
        if result.status != "pass":
            result.message = f"{failures} failing row{'s' if failures != 1 else ''}"


class GateClosed(Exception):
    """A gated model's tests failed: its new version was rolled back and the old one still serves."""

    def __init__(self, failed: list[NodeResult]):
        names = ", ".join(f"{r.name} ({r.message or r.status})" for r in failed)
        super().__init__(f"not deployed: its tests failed: {names}; the previous version keeps serving")


def schema_missing(exc: BaseException, schema: str) -> bool:
    """The warehouse says `schema` does not exist (DuckDB: 'Schema with name x does not exist';
    PostgreSQL: 'schema "x" does not exist')."""
    name = re.escape(schema.lower())
    return re.search(rf'schema (with name {name}|"{name}") does not exist', str(exc).lower()) is not None


def _clean_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if len(text) > 2000 else text
