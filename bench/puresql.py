"""The physical limit: dbt's compiled SQL executed directly on DuckDB, in dependency order.

Reads ``manifest.json`` from a ``dbt compile`` target directory, takes every model's and data test's
compiled SQL from ``target/compiled/...`` (the manifest's ``compiled_path``), and runs

* a model as ``create or replace table|view <relation> as (<sql>)``,
* a test as ``select count(*) from (<sql>)`` (the number of failing rows),

with ``threads`` workers on ONE DuckDB connection (a cursor per worker thread). A node starts as soon
as every model it depends on has been built; tests gate nothing (no orchestration beyond the DAG).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import duckdb


@dataclass
class Node:
    uid: str
    kind: str  # "model" or "test"
    name: str
    sql: str
    relation: str | None
    materialized: str | None
    deps: list = field(default_factory=list)


def load_nodes(target_dir: Path) -> list[Node]:
    """The models and tests of a compiled dbt target, with their compiled SQL and dependencies."""
    target_dir = Path(target_dir)
    manifest = json.loads((target_dir / "manifest.json").read_text())
    raw = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "test")}
    nodes = []
    for uid, n in raw.items():
        materialized = n["config"].get("materialized")
        if n["resource_type"] == "model" and materialized not in ("table", "view"):
            raise ValueError(
                f"{uid}: materialization {materialized!r} is not supported by the pure-SQL runner"
            )
        path = Path(n.get("compiled_path") or "")
        if not path.is_absolute():
            path = target_dir.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"{uid}: no compiled SQL at {path} (run `dbt compile` first)")
        deps = [d for d in n["depends_on"]["nodes"] if d in raw]
        nodes.append(
            Node(
                uid,
                n["resource_type"],
                n["name"],
                path.read_text(),
                n.get("relation_name"),
                materialized,
                deps,
            )
        )
    return nodes


def _statement(node: Node) -> str:
    # The newline before ")" keeps a trailing "-- comment" in the compiled SQL harmless.
    if node.kind == "model":
        return f"create or replace {node.materialized} {node.relation} as (\n{node.sql}\n)"
    return f"select count(*) from (\n{node.sql}\n) dbt_internal_test"


def run(target_dir: Path, warehouse: Path, schema: str = "analytics", threads: int = 2) -> dict:
    """Execute the compiled project into ``warehouse``; return timings and test outcomes."""
    nodes = {n.uid: n for n in load_nodes(target_dir)}
    children: dict[str, list[str]] = {uid: [] for uid in nodes}
    waiting = {uid: len(n.deps) for uid, n in nodes.items()}
    for uid, n in nodes.items():
        for dep in n.deps:
            children[dep].append(uid)

    t_connect = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    con.execute(f'create schema if not exists "{schema}"')
    local = threading.local()

    def execute(node: Node):
        cursor = getattr(local, "cursor", None)
        if cursor is None:
            cursor = local.cursor = con.cursor()
        start = time.perf_counter()
        try:
            result = cursor.execute(_statement(node)).fetchall()
        except duckdb.Error as exc:
            raise RuntimeError(f"{node.uid}: {exc}") from exc
        failures = int(result[0][0]) if node.kind == "test" else None
        return node.uid, time.perf_counter() - start, failures

    node_seconds, failing_tests = {}, {}
    t_start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            running = {pool.submit(execute, nodes[uid]) for uid, count in waiting.items() if count == 0}
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    uid, seconds, failures = future.result()  # re-raises a failed statement
                    node_seconds[uid] = seconds
                    if failures:
                        failing_tests[nodes[uid].name] = failures
                    for child in children[uid]:
                        waiting[child] -= 1
                        if waiting[child] == 0:
                            running.add(pool.submit(execute, nodes[child]))
        elapsed = time.perf_counter() - t_start
    finally:
        con.close()
    if len(node_seconds) != len(nodes):
        raise RuntimeError(f"dependency cycle: ran {len(node_seconds)} of {len(nodes)} nodes")
    return {
        "seconds": elapsed,
        "seconds_with_connect": time.perf_counter() - t_connect,
        "statement_seconds_sum": sum(node_seconds.values()),
        "models": sum(1 for n in nodes.values() if n.kind == "model"),
        "tests": sum(1 for n in nodes.values() if n.kind == "test"),
        "failing_tests": failing_tests,
        "slowest": {
            nodes[uid].name: round(sec, 3)
            for uid, sec in sorted(node_seconds.items(), key=lambda kv: -kv[1])[:5]
        },
        "threads": threads,
    }
