"""`dmaas`: build, run, test, seed, compile or list a dbt project, the way dbt's CLI does.

Exit codes as dbt's: 0 when nothing errored, 1 when a node errored or a test failed, 2 for a usage or
project error (which names the file, the line and what to do).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .errors import ProjectError, UsageError

COMMANDS = ("build", "run", "test", "seed", "compile", "ls")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmaas", description="Compile, build and test a dbt project.")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--project", default=".", help="the folder that holds dbt_project.yml")
    p.add_argument("--warehouse", default=os.environ.get("DMAAS_WAREHOUSE", ""),
                   help="duckdb:///path/file.duckdb or postgresql://user@host/db (default $DMAAS_WAREHOUSE)")
    p.add_argument("--schema", default="analytics", help="the target schema models land in")
    p.add_argument("--target", default="dev", help="target.name as models see it")
    p.add_argument("-s", "--select", nargs="+", action="extend", help="dbt selection: name +name name+ tag:x path:d")
    p.add_argument("--exclude", nargs="+", action="extend")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full-refresh", action="store_true")
    p.add_argument("--vars", default="", help="YAML mapping, e.g. '{start: 2024-01-01}'")
    p.add_argument("--target-path", default=None, help="where run_results.json and compiled SQL go")
    p.add_argument("-q", "--quiet", action="store_true", help="print the summary only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _main(args)
    except (ProjectError, UsageError, ValueError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    from .compiler import Target, compile_project
    from .graph import SelectableNode, select
    from .project import load_project

    started = time.monotonic()
    if args.threads < 1:
        raise UsageError("--threads must be 1 or more")
    cli_vars: dict[str, Any] = {}
    if args.vars:
        from models_service.project_files import load_yaml

        cli_vars = load_yaml(args.vars, "--vars")
        if not isinstance(cli_vars, dict):
            raise UsageError("--vars must be a YAML mapping such as '{key: value}'")
    if not os.path.isfile(os.path.join(args.project, "dbt_project.yml")):
        raise UsageError(f"no dbt_project.yml in {args.project!r}: point --project at the project folder")
    target_path = args.target_path or os.path.join(args.project, "target")
    project = load_project(args.project, cli_vars)

    needs_warehouse = args.command not in ("ls",)
    if needs_warehouse and not args.warehouse:
        raise UsageError("no warehouse: pass --warehouse duckdb:///file.duckdb (or set DMAAS_WAREHOUSE)")
    adapter = None
    existing: set[tuple[str, str]] = set()
    wtype = "postgres" if args.warehouse.startswith("postgres") else "duckdb"
    if needs_warehouse and not args.warehouse.startswith(("duckdb://", "postgresql://", "postgres://")):
        raise UsageError(f"unknown warehouse URL {args.warehouse!r}: use duckdb:///path/to/file.duckdb "
                         "or postgresql://user@host/db")
    if needs_warehouse:
        from .adapters import adapter_for
        from .adapters.duckdb import duckdb_path

        path = duckdb_path(args.warehouse) if wtype == "duckdb" else ""
        if args.command == "compile" and wtype == "duckdb" and not os.path.exists(path):
            adapter = None  # nothing built yet: nothing is incremental, and compile creates no file
        elif args.command == "compile" and not _may_be_incremental(project):
            adapter = None  # what exists only matters to is_incremental(): no need to open the warehouse
        else:
            adapter = adapter_for(args.warehouse)
            existing = {rel for rel, kind in adapter.prime_catalog().items() if kind}
    target = Target(name=args.target, schema=args.schema, type=wtype, threads=args.threads)
    try:
        manifest = compile_project(project, target, existing, args.full_refresh)
        selectable = {
            uid: SelectableNode(uid, n.name, n.resource_type, n.path, n.fqn, n.tags, n.sources,
                                [n.test.attached_uid] if n.test and n.test.attached_uid else [])
            for uid, n in manifest.nodes.items()
        }
        chosen = select(manifest.graph, selectable, args.select, args.exclude)
        chosen |= _tests_of(manifest, chosen, args.select is not None)
        if args.command == "ls":
            for uid in manifest.graph.topological():
                if uid in chosen:
                    print(".".join(manifest.nodes[uid].fqn))
            return 0
        if args.command == "compile":
            return _compile(manifest, chosen, target_path, started, args.quiet)
        return _execute(manifest, adapter, chosen, args, target_path, started)
    finally:
        if adapter is not None:
            adapter.close()


def _may_be_incremental(project: Any) -> bool:
    """Whether a model is, or may make itself (a config() call in its SQL), incremental."""
    return any(n.resource_type == "model" and (n.config.get("materialized") == "incremental"
                                                or "incremental" in n.raw_code) for n in project.nodes.values())


def _tests_of(manifest: Any, chosen: set[str], explicit: bool) -> set[str]:
    """dbt's eager indirect selection: a test comes along when any node it tests is selected."""
    if not explicit:
        return set()
    return {
        uid for uid, n in manifest.nodes.items()
        if n.resource_type == "test" and any(d in chosen for d in n.depends_on)
    }


def _compile(manifest: Any, chosen: set[str], target_path: str, started: float, quiet: bool) -> int:
    out_root = os.path.join(target_path, "compiled", manifest.project.name)
    written = 0
    for uid in manifest.graph.topological():
        if uid not in chosen or uid not in manifest.compiled:
            continue
        node = manifest.nodes[uid]
        rel_path = node.path if node.resource_type != "test" or node.test.kind == "singular" else \
            f"{node.path.rsplit('.', 1)[0]}/{node.name}.sql"
        dest = os.path.join(out_root, rel_path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(manifest.compiled[uid])
        written += 1
    only = [u for u in chosen if u in manifest.compiled]
    if len(only) == 1 and not quiet:
        print(manifest.compiled[only[0]])
    models = sum(1 for u in only if manifest.nodes[u].resource_type == "model")
    print(f"Compiled {models} models and {len(only) - models} tests in {time.monotonic() - started:.2f}s "
          f"into {out_root}")
    return 0


STATUS_WORDS = {"success": "OK", "pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR",
                "skipped": "SKIP"}


def _execute(manifest: Any, adapter: Any, chosen: set[str], args: argparse.Namespace, target_path: str,
             started: float) -> int:
    from .execution import Executor, NodeResult, RunOptions, execution_graph

    total = len(execution_graph(manifest, chosen, args.command).parents)
    counter = {"n": 0}

    def on_result(r: NodeResult) -> None:
        counter["n"] += 1
        if args.quiet:
            return
        node = manifest.nodes[r.unique_id]
        kind = node.materialized if node.resource_type == "model" else node.resource_type
        rows = f"{r.rows} rows, " if r.rows is not None else ""
        detail = f" -- {r.message}" if r.message and r.status != "success" else ""
        print(f"{counter['n']:>4} of {total} {STATUS_WORDS[r.status]:<5} {kind:<11} {r.name} "
              f"[{rows}{r.seconds:.2f}s]{detail}", flush=True)

    options = RunOptions(command=args.command, threads=args.threads, full_refresh=args.full_refresh,
                         on_result=on_result)
    summary = Executor(manifest, adapter, options).run(chosen)
    elapsed = time.monotonic() - started
    _write_results(target_path, args.command, elapsed, summary.results)
    print(f"\nFinished in {elapsed:.2f}s. PASS={summary.count('success', 'pass')} WARN={summary.count('warn')} "
          f"ERROR={summary.count('error', 'fail')} SKIP={summary.count('skipped')} TOTAL={len(summary.results)}")
    return 0 if summary.ok else 1


def _write_results(target_path: str, command: str, elapsed: float, results: list[Any]) -> None:
    os.makedirs(target_path, exist_ok=True)
    with open(os.path.join(target_path, "run_results.json"), "w", encoding="utf-8") as fh:
        json.dump({"command": command, "elapsed": round(elapsed, 3),
                   "results": [r.as_dict() for r in results]}, fh, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
