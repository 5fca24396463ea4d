"""The x100 simulation (issue 10, item 4): what can be measured here of 10,000 models, 200 analysts
and 20 workers, in one command, judged against the targets of the issues that set them.

It runs the project's own benchmarks at 10,000 models, each in a process of its own, and prints one
table (docs/capacity.md quotes it and says what the figures mean for capacity):

* validation as the analyst types (bench/validate.py --models N): p95 < 50 ms;
* catalog search (bench/catalog.py --nodes N): p95 < 100 ms, service and API, SQLite and PostgreSQL;
* a save on a repository of N models, 2N files (bench/store.py --models N): p95 < 100 ms; the
  repository's git objects and size after it, and the index rebuild time;
* with --analysts K (default 200): K saves released at once on one change of the N-model
  repository, on PostgreSQL (bench/store.py --concurrent K): p95 < 2 s (RELIABILITY L1's target at 100);
* with --run-models M (default 0: not run; bench/run.py belongs to issue 7's tuning and takes
  minutes): a production run of M models on one worker over Redis, orchestration overhead per node
  < 20 ms (bench/run.py --no-measure).

Twenty workers and 200 analysts cannot be run on a 2-CPU machine: the figures per save, per check,
per search and per node are what the capacity plan multiplies. Writes bench/out/scale/scale.json
(and each benchmark's own JSON beside it). Exit 0 unless a benchmark breaks; the verdicts are printed.

    .venv/bin/python bench/scale.py                         # 10,000 models, 200 concurrent saves
    .venv/bin/python bench/scale.py --models 2000 --analysts 0 --run-models 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = os.environ.get("DMAAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
Row = tuple[str, str, str, bool | None]  # what, figure, target, passed (None: a figure without a target)


def bench(script: str, *options: str) -> tuple[float, str]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *options], cwd=ROOT, capture_output=True,
                          text=True)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"bench/{script} {' '.join(options)} failed with exit status {done.returncode}")
    return time.monotonic() - began, done.stdout


def validation(n: int, out: Path) -> list[Row]:
    took, _ = bench("validate.py", "--models", str(n), "--out", str(out))
    r = json.loads((out / "validate.json").read_text())
    a, c = r["all"], r["first_keystroke"]
    return [(f"validation p95, {n:,} models ({a['checks']} checks)", f"{a['p95_ms']} ms", "< 50 ms",
             a["p95_ms"] < 50),
            ("  first keystroke on a model, p95", f"{c['p95_ms']} ms", "(figure)", None),
            ("  first check after a start (index read)", f"{r['first_check_ms']} ms", "(figure)", None),
            ("  index rebuild of main", f"{r['reindex_seconds']} s", "(figure)", None)]


def search(n: int, out: Path, postgres: str | None) -> list[Row]:
    bench("catalog.py", "--nodes", str(n), "--out", str(out), *(["--database-url", postgres] if postgres
                                                                  else ["--no-postgres"]))
    rows: list[Row] = []
    for r in json.loads((out / "catalog.json").read_text())["results"]:
        for part in ("service", "api"):
            p95 = r[part]["p95_ms"]
            rows.append((f"search p95, {n:,} nodes, {r['database']}, {part}", f"{p95} ms", "< 100 ms", p95 < 100))
        rows.append(("  first search after main moves (of which the index's build), index memory",
                     f"{r['first_search_ms']} ms ({r['index_build_ms']} ms), {r['index_mib']} MiB", "(figure)", None))
    return rows


def saves(n: int, count: int, out: Path, work: Path) -> list[Row]:
    bench("store.py", "--models", str(n), "--saves", str(count), "--out", str(out), "--work", str(work))
    r = next(x for x in json.loads((out / "store.json").read_text())["results"] if x["models"] == n)
    rows: list[Row] = [(f"save p95, {n:,} models ({2 * n:,} files)", f"{r['service']['p95_ms']} ms", "< 100 ms",
                        r["service"]["p95_ms"] < 100 and r["fsck_clean"]),
                       ("  of which git", f"{r['git']['p95_ms']} ms", "(figure)", None),
                       (f"  index rebuild, {n:,} models", f"{r['reindex_seconds']} s", "(figure)", None)]
    for repo in work.glob(f"*{n}*.git"):
        git = ["git", "--git-dir", str(repo)]
        info = dict(line.split(": ", 1) for line in subprocess.run(
            [*git, "count-objects", "-v"], capture_output=True, text=True).stdout.splitlines())
        loose, packed = int(info.get("count", 0)), int(info.get("in-pack", 0))
        kib = int(info.get("size", 0)) + int(info.get("size-pack", 0))
        rows.append(("  repository on disk", f"{loose + packed:,} objects ({loose:,} loose), {kib / 1024:.0f} MB",
                     "(figure)", None))
        # a save rewrites every tree on its path: the biggest folder's tree is what each save writes anew
        folders = ["models"] + ["models/" + f for f in subprocess.run(
            [*git, "ls-tree", "-d", "--name-only", "main:models"], capture_output=True, text=True).stdout.split()]
        size, folder = max((int(subprocess.run([*git, "cat-file", "-s", f"main:{f}"], capture_output=True,
                                               text=True).stdout or 0), f) for f in folders)
        entries = len(subprocess.run([*git, "ls-tree", f"main:{folder}"], capture_output=True,
                                     text=True).stdout.splitlines())
        rows.append(("  biggest folder's tree, rewritten per save", f"{folder}/: {entries:,} entries, "
                     f"{size / 1024:.0f} KB", "(figure)", None))
        break
    return rows


def concurrent(n: int, analysts: int, out: Path, postgres: str | None) -> list[Row]:
    options = ["--concurrent", str(analysts), "--models", str(n), "--rounds", "1", "--out", str(out)]
    bench("store.py", *options, *(["--database-url", postgres] if postgres else []))
    vendor = "postgresql" if postgres else "sqlite"
    r = json.loads((out / f"store-concurrent-{vendor}.json").read_text())["results"][0]
    p95 = r["all"]["p95_ms"] if "all" in r else r["p95_ms"]
    return [(f"{analysts} saves at once, {n:,} models, {vendor}", f"p95 {p95 / 1000:.2f} s", "< 2 s", p95 < 2000)]


def run_overhead(models: int, out: Path) -> list[Row]:
    bench("run.py", "--models", str(models), "--workers", "1", "--brokers", "redis", "--no-measure", "--out", str(out))
    r = json.loads((out / "run.json").read_text())["results"][0]
    ms = r["overhead_ms_per_node"]
    return [(f"run overhead per node, {models} models, 1 worker", f"{ms} ms", "< 20 ms", ms < 20)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000, help="project size (default 10,000)")
    parser.add_argument("--saves", type=int, default=200, help="saves timed (default 200)")
    parser.add_argument("--analysts", type=int, default=200, help="saves released at once (default 200; 0: skip)")
    parser.add_argument("--run-models", type=int, default=0, help="also time a run of this many models (default 0)")
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL for search and concurrent saves")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    args = parser.parse_args()
    postgres = None if args.no_postgres else args.database_url
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="dmaas-bench-scale-"))
    rows: list[Row] = []
    try:
        rows += validation(args.models, args.out)
        rows += search(args.models, args.out, postgres)
        rows += saves(args.models, args.saves, args.out, work)
        if args.analysts:
            rows += concurrent(args.models, args.analysts, args.out, postgres)
        if args.run_models:
            rows += run_overhead(args.run_models, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\nx100 simulation at {args.models:,} models ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, load {load_before[0]:.1f} -> {load_after[0]:.1f}, "
          f"{time.monotonic() - began:.0f} s)")
    print(f"{'what':<46} {'figure':<30} {'target':<10} result")
    for what, figure, target, ok in rows:
        print(f"{what:<46} {figure:<30} {target:<10} {'' if ok is None else 'PASS' if ok else 'FAIL'}")
    report: dict[str, Any] = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "load_before": load_before, "load_after": load_after, "options": {k: str(v) for k, v in vars(args).items()},
        "rows": [{"what": w.strip(), "figure": f, "target": t, "pass": ok} for w, f, t, ok in rows]}
    (args.out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / 'scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
