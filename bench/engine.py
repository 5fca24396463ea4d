"""Benchmark the dmaas engine against dbt-core and against the pure SQL time.

    python bench/engine.py [--models 100 500] [--rows 200000] [--out bench/out] [--only dbt,pure,dmaas]

For each N it generates a layered synthetic dbt project (bench/synth.py) and a DuckDB warehouse whose
four source tables hold ~``rows`` rows each, then times, in this one run:

* ``dbt parse``, ``dbt compile``, ``dbt build --threads 2`` (dbt-core + dbt-duckdb, ``--no-partial-parse``);
* the pure SQL time: dbt's compiled SQL executed directly, in dependency order, with 2 worker threads on
  one DuckDB connection (bench/puresql.py) - the physical limit of any build;
* ``dmaas compile`` and ``dmaas build --threads 2`` (``python -m runner.engine.cli``).

Every build runs on its own fresh copy of the warehouse file. Times are wall clock of the whole command
(Python start-up included, for both tools). It prints a table per N with the ratios against the targets of
issue 2 and writes the figures to ``<out>/engine-<N>.json``. Exit 0 whatever the ratios; exit 1 when a tool
fails (with the tail of its output).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import puresql
import synth

REPO = Path(__file__).resolve().parent.parent
WAREHOUSE_NAME = "warehouse.duckdb"  # the same file name for every copy: DuckDB names the catalog after it
SCHEMA = "analytics"
THREADS = 2
PARTS = ("dbt", "pure", "dmaas")

TARGETS = {
    # name: (description, comparison, limit)
    "compile_speedup": ("dbt compile / dmaas compile", ">=", 20.0),
    "build_vs_pure": ("dmaas build / pure SQL", "<=", 1.2),
    "overhead_ratio": ("(dmaas build - pure) / (dbt build - pure)", "<=", 0.1),
}
TARGET_N = 500  # the targets of issue 2 are stated at N = 500


class ToolFailed(Exception):
    pass


def venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def dbt_executable() -> str:
    candidate = REPO / ".venv" / "bin" / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise ToolFailed("dbt: no dbt executable in .venv/bin or on PATH")
    return found


def fresh_copy(base: Path, folder: Path) -> Path:
    """A fresh copy of the base warehouse in ``folder`` (same file name, so the same catalog name)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    target = folder / WAREHOUSE_NAME
    shutil.copyfile(base, target)
    return target


def timed(
    label: str, cmd: list[str], log: Path, env: dict | None = None, cwd: Path = REPO
) -> tuple[float, str]:
    """Run a command, return (wall seconds, stdout); raise ToolFailed on a non-zero exit."""
    print(f"  {label:<15} ", end="", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log.write_text(
        f"$ {' '.join(cmd)}\n# exit {proc.returncode} in {seconds:.2f}s\n{proc.stdout}\n{proc.stderr}"
    )
    if proc.returncode != 0:
        print(f"FAILED (exit {proc.returncode})")
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-30:])
        raise ToolFailed(f"{label} exited {proc.returncode} (full log: {log})\n{tail}")
    print(f"{seconds:8.2f} s")
    return seconds, proc.stdout


# ---- dbt -----------------------------------------------------------------------------------------


def dbt_env(warehouse: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_VERSION_CHECK="false",
        BENCH_WAREHOUSE=str(warehouse),
    )
    # Let Python keep its byte-code cache, as an installed tool does (this machine sets the variable).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_dbt(command: str, project: Path, warehouse: Path, target: Path, work: Path) -> tuple[float, dict]:
    cmd = [
        dbt_executable(),
        command,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(target),
        "--log-path",
        str(work / "logs" / f"dbt-{command}"),
        "--no-partial-parse",
    ]
    if command != "parse":
        cmd += ["--threads", str(THREADS)]
    seconds, stdout = timed(
        f"dbt {command}", cmd, work / "logs" / f"dbt-{command}.out", env=dbt_env(warehouse)
    )
    reported = {}
    results = target / "run_results.json"
    if command != "parse" and results.exists():
        data = json.loads(results.read_text())
        reported["elapsed"] = data.get("elapsed_time")
        statuses = [r["status"] for r in data.get("results", [])]
        reported["nodes"] = len(statuses)
        reported["statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    perf = target / "perf_info.json"
    if command == "parse" and perf.exists():
        reported["elapsed"] = json.loads(perf.read_text()).get("load_all_elapsed")
    match = re.search(r"Finished running .*?\(([\d.]+)s\)", stdout)
    if match:
        reported["finished_running"] = float(match.group(1))
    return seconds, reported


# ---- dmaas ---------------------------------------------------------------------------------------


def run_dmaas(command: str, project: Path, warehouse: Path, target: Path, work: Path) -> tuple[float, dict]:
    cmd = [
        venv_python(),
        "-m",
        "runner.engine.cli",
        command,
        "--project",
        str(project),
        "--warehouse",
        f"duckdb:///{warehouse}",
        "--schema",
        SCHEMA,
        "--threads",
        str(THREADS),
        "--target-path",
        str(target),
    ]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    seconds, stdout = timed(f"dmaas {command}", cmd, work / "logs" / f"dmaas-{command}.out", env=env)
    reported = {}
    results = target / "run_results.json"
    if results.exists():
        try:
            data = json.loads(results.read_text())
            elapsed = data.get("elapsed_time", data.get("elapsed"))
            if isinstance(elapsed, (int, float)):
                reported["elapsed"] = float(elapsed)
        except (ValueError, AttributeError):
            pass
    summary = re.findall(r"PASS=(\d+)\s+WARN=(\d+)\s+ERROR=(\d+)\s+SKIP=(\d+)", stdout)
    if summary:
        reported["summary"] = dict(zip(("pass", "warn", "error", "skip"), map(int, summary[-1]), strict=True))
    if "elapsed" not in reported:
        # Otherwise the closing summary line, e.g. "... PASS=3 ... in 1.23s" (not a per-node line).
        for line in reversed(stdout.strip().splitlines()[-3:]):
            if re.search(r"PASS=|finished|done|compiled|elapsed|total", line, re.IGNORECASE):
                match = re.search(r"([\d.]+)\s*s\b", line)
                if match:
                    reported["elapsed"] = float(match.group(1))
                    break
    return seconds, reported


# ---- one N ---------------------------------------------------------------------------------------


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def verdict(name: str, value) -> str:
    if value is None:
        return "n/a"
    _, op, limit = TARGETS[name]
    ok = value >= limit if op == ">=" else value <= limit
    return "PASS" if ok else "FAIL"


def measure(parts: set, project_dir: Path, base: Path, work: Path) -> tuple[dict, dict]:
    """One round of every selected tool on fresh warehouse copies: (wall seconds, tool-reported figures)."""
    times: dict[str, float | None] = dict.fromkeys(
        ("dmaas_compile", "dmaas_build", "dbt_parse", "dbt_compile", "dbt_build", "pure_sql")
    )
    reported: dict[str, dict] = {}

    if parts & {"dbt", "pure"}:
        # The dbt compile output (manifest + compiled SQL) also feeds the pure SQL run.
        warehouse = fresh_copy(base, work / "dbt")
        if "dbt" in parts:
            times["dbt_parse"], reported["dbt_parse"] = run_dbt(
                "parse", project_dir, warehouse, work / "target-dbt-parse", work
            )
        times["dbt_compile"], reported["dbt_compile"] = run_dbt(
            "compile", project_dir, warehouse, work / "target-dbt-compile", work
        )
    if "pure" in parts:
        warehouse = fresh_copy(base, work / "pure")
        print(f"  {'pure SQL':<15} ", end="", flush=True)
        try:
            result = puresql.run(work / "target-dbt-compile", warehouse, SCHEMA, THREADS)
        except Exception as exc:  # any failure of a statement is a tool failure
            print("FAILED")
            raise ToolFailed(f"pure SQL: {exc}") from exc
        times["pure_sql"] = result["seconds"]
        reported["pure_sql"] = result
        print(
            f"{result['seconds']:8.2f} s   ({result['models']} models, {result['tests']} tests"
            f"{', FAILING TESTS: ' + str(result['failing_tests']) if result['failing_tests'] else ''})"
        )
        shutil.rmtree(work / "pure")
    if "dbt" in parts:
        warehouse = fresh_copy(base, work / "dbt")
        times["dbt_build"], reported["dbt_build"] = run_dbt(
            "build", project_dir, warehouse, work / "target-dbt-build", work
        )
        shutil.rmtree(work / "dbt")
    if "dmaas" in parts:
        warehouse = fresh_copy(base, work / "dmaas")
        times["dmaas_compile"], reported["dmaas_compile"] = run_dmaas(
            "compile", project_dir, warehouse, work / "target-dmaas-compile", work
        )
        warehouse = fresh_copy(base, work / "dmaas")
        times["dmaas_build"], reported["dmaas_build"] = run_dmaas(
            "build", project_dir, warehouse, work / "target-dmaas-build", work
        )
        shutil.rmtree(work / "dmaas")

    return times, reported


def bench_one(n: int, rows: int, seed: int, parts: set, work: Path, repeat: int = 1) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    project_dir = work / "project"
    if project_dir.exists():
        shutil.rmtree(project_dir)

    t0 = time.perf_counter()
    project = synth.plan(n, seed)
    synth.write_project(project, project_dir)
    base = work / "base" / WAREHOUSE_NAME
    if base.exists():
        base.unlink()
    base.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(base))
    synth.create_sources(con, rows, seed)
    con.close()
    generate_s = time.perf_counter() - t0
    print(
        f"  generated {n} models, {project.n_tests} tests, 4 source tables x {rows} rows in {generate_s:.1f} s"
    )

    loads = [os.getloadavg()[0]]
    samples: list[dict] = []
    rounds: list[tuple[dict, dict]] = []
    for round_no in range(repeat):
        if repeat > 1:
            print(f"  -- round {round_no + 1} of {repeat}")
        rounds.append(measure(parts, project_dir, base, work))
        samples.append(rounds[-1][0])
        loads.append(os.getloadavg()[0])
    # With several rounds, every figure is the minimum over the rounds (the least disturbed one), and
    # the tool-reported figures come from that same round.
    times: dict[str, float | None] = {}
    reported: dict[str, dict] = {}
    for key in samples[0]:
        measured = [(t[key], i) for i, t in enumerate(samples) if t[key] is not None]
        times[key] = min(measured)[0] if measured else None
        if measured and key in rounds[min(measured)[1]][1]:
            reported[key] = rounds[min(measured)[1]][1][key]

    pure = times["pure_sql"]
    ratios = {
        "compile_speedup": ratio(times["dbt_compile"], times["dmaas_compile"]),
        "build_vs_pure": ratio(times["dmaas_build"], pure),
        "overhead_ratio": (
            ratio(times["dmaas_build"] - pure, times["dbt_build"] - pure)
            if None not in (times["dmaas_build"], times["dbt_build"], pure)
            else None
        ),
    }
    return {
        "n_models": n,
        "n_tests": project.n_tests,
        "rows_per_source": rows,
        "source_tables": sum(len(t) for t in synth.SOURCE_TABLES.values()),
        "seed": seed,
        "threads": THREADS,
        "generate_seconds": generate_s,
        "times_seconds": times,
        "rounds": repeat,
        "samples_seconds": samples,
        "reported": reported,
        "ratios": ratios,
        "targets": {
            k: {
                "ratio": desc,
                "target": f"{op} {limit}",
                "applies_at_n": TARGET_N,
                "result": verdict(k, ratios[k]),
            }
            for k, (desc, op, limit) in TARGETS.items()
        },
        "environment": {
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            # 1-minute load average before the first and after every round: other work on the machine
            # inflates every figure, the pure SQL time included.
            "load_average": [round(x, 2) for x in loads],
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def fmt(value, unit="s") -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if unit else f"{value:.2f}"


def print_table(result: dict) -> None:
    t, rep = result["times_seconds"], result["reported"]
    n = result["n_models"]
    print()
    print(
        f"N = {n} models, {result['n_tests']} tests, {result['source_tables']} sources x "
        f"{result['rows_per_source']} rows, {result['threads']} threads, best of {result['rounds']} round(s), "
        f"load average {'/'.join(f'{x:.1f}' for x in result['environment']['load_average'])}"
    )
    print(f"  {'step':<16}{'wall clock':>12}{'tool-reported':>16}")
    for key, label in [
        ("dbt_parse", "dbt parse"),
        ("dbt_compile", "dbt compile"),
        ("dbt_build", "dbt build"),
        ("pure_sql", "pure SQL"),
        ("dmaas_compile", "dmaas compile"),
        ("dmaas_build", "dmaas build"),
    ]:
        own = (rep.get(key) or {}).get("elapsed") if key != "pure_sql" else None
        print(f"  {label:<16}{fmt(t[key]):>12}{fmt(own):>16}")
    print(f"  {'ratio':<44}{'value':>8}  {'target':<8}{'result'}")
    for key, (desc, op, limit) in TARGETS.items():
        value = result["ratios"][key]
        note = "" if n == TARGET_N else f" (target set at N={TARGET_N})"
        print(f"  {desc:<44}{fmt(value, ''):>8}  {op} {limit:<5}{verdict(key, value)}{note}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", type=int, nargs="+", default=[100, 500], help="project sizes (default 100 500)"
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows per source table (default 200000)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="where engine-<N>.json go")
    parser.add_argument(
        "--only", default=",".join(PARTS), help="comma list of parts: dbt,pure,dmaas (default all)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the project and the data (default 42)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per N; each figure is the minimum (default 1)"
    )
    parser.add_argument(
        "--work", type=Path, help="keep the projects, warehouses and logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - set(PARTS):
        parser.error(f"--only takes a comma list of {', '.join(PARTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    work_root = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-"))
    print(f"dmaas engine benchmark: N={args.models}, parts={sorted(parts)}, work dir {work_root}")
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(f"warning: load average {load:.1f} on {cpus} CPUs - other work will inflate every figure")

    started = time.perf_counter()
    status = 0
    for n in args.models:
        print(f"\n== N = {n}")
        try:
            result = bench_one(n, args.rows, args.seed, parts, work_root / f"n{n}", max(1, args.repeat))
        except ToolFailed as exc:
            print(f"\nTOOL FAILED at N={n}: {exc}", file=sys.stderr)
            status = 1
            break
        result["parts"] = sorted(parts)
        (args.out / f"engine-{n}.json").write_text(json.dumps(result, indent=2) + "\n")
        print_table(result)
        print(f"  figures: {args.out / f'engine-{n}.json'}")
    print(f"\nbenchmark took {time.perf_counter() - started:.0f} s")
    if args.work is None and status == 0:
        shutil.rmtree(work_root, ignore_errors=True)
    elif status:
        print(f"work dir kept for inspection: {work_root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
