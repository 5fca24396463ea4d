"""What measuring every build costs (issue 9, item 1): the hourly run with and without it.

    .venv/bin/python bench/observe.py [--models 500] [--rows 200000] [--workers 2] [--repeat 2] [--work DIR]
    .venv/bin/python bench/observe.py --engine-only [--threads 2]   # the engine's build alone, in-process

**The hourly run** (the default). The benchmark project of bench/engine.py (bench/synth.py: 500 layered
models, staging views, intermediate and mart tables, ~84 data tests, four source tables of ``--rows``
rows in a DuckDB warehouse) is committed to main of a fresh repository, with the portal on a
throwaway PostgreSQL database, as bench/run.py sets it up (its helpers are used). The hourly schedule
is fired through Redis the way beat does, and real ``celery worker`` processes (``--workers``) plan
the run, build every node in its task, and, when measuring, measure each model in the node's
warehouse lease, save the measurement and compare the schema; once the run has ended its judging task
compares every measurement with the model's history and tells the PII scanner: everything a production
run does. The run's time is from the schedule's message to the run's end; how long after the end the
last measurement was judged is printed beside it, and the workers are kept until then, so no round's
judging falls into the next round. Measuring off is ``DMAAS_MEASURE_BUILDS=0`` in the workers'
environment.

Before timing, the data watch is put in its steady state, so the timed runs cost what an hourly run
costs on a platform that has been running for weeks: one measured run builds every relation and
measures it, its PII scans are waited for, and each model gets a history (the last 24 hours, and the
same and next hour of each day of the last 8 weeks: what the detector reads) copied from that
measurement. Then ``--repeat`` rounds each time a plain run and a measured run (alternating which goes
first), each with freshly started workers after a warm-up of one model per worker; the best of each
kind is kept and the ratio measured / plain printed against the target (<= 1.10), PASS or FAIL.

**--engine-only** (the figure of earlier sessions): the same project built in this one process by the
engine's executor (``--threads`` threads, gated), with each model measured by runner.observe.stats in
the thread that built it; no portal database, no saving or judging. It shows the measuring SQL alone.

Figures go to bench/out/observe.json. Exit 0 unless a build or a run fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
import synth  # noqa: E402

from runner.engine.adapters import adapter_for  # noqa: E402
from runner.engine.compiler import Target, compile_project  # noqa: E402
from runner.engine.execution import Executor, NodeResult, RunOptions  # noqa: E402
from runner.engine.project import load_project  # noqa: E402
from runner.observe import anomalies, stats  # noqa: E402

SCHEMA = "analytics"
TARGET = 1.10
ZONE = ZoneInfo("Europe/Berlin")


class MeasuringExecutor(Executor):
    """The engine's executor, measuring each model or seed in the thread that built it. `hints`: the
    low-cardinality columns of the previous round, as runner.observe.record passes the last
    measurement's (so a steady hourly run measures in one query per relation)."""

    measured: list[stats.RelationStats]
    hints: dict[str, set[str]]

    def safe_run(self, uid: str) -> NodeResult:
        result = super().safe_run(uid)
        node = self.manifest.nodes[uid]
        if result.status == "success" and node.resource_type in ("model", "seed"):
            schema, name = self.manifest.relations[uid]
            kind = "view" if node.materialized == "view" else "table"
            # as runner.observe.record passes it: the build's count is exact for a full build only
            exact = result.rows if node.materialized in ("table", "seed") or node.resource_type == "seed" else None
            self.measured.append(stats.measure(self.adapter, schema, name, kind=kind, rows=exact,
                                               top_hint=self.hints.get(name, ())))
        return result


HINTS: dict[str, set[str]] = {}


def build(manifest, url: str, threads: int, *, measure: bool) -> tuple[float, list[stats.RelationStats]]:
    adapter = adapter_for(url)
    try:
        options = RunOptions(command="build", threads=threads, gate=True)
        executor = MeasuringExecutor(manifest, adapter, options) if measure else Executor(manifest, adapter, options)
        executor.measured, executor.hints = [], HINTS
        started = time.perf_counter()
        summary = executor.run(set(manifest.nodes))
        seconds = time.perf_counter() - started
    finally:
        adapter.close()
    for relation in executor.measured:
        HINTS[relation.name] = {c["name"] for c in relation.columns if "top" in c}
    bad = [r for r in summary.results if r.is_error or r.status == "skipped"]
    if bad:
        raise SystemExit(f"the build failed: {bad[0].name}: {bad[0].message}")
    return seconds, executor.measured


def detector_seconds(measured: list[stats.RelationStats], weeks: int = 8) -> float:
    """Judge every metric of every measurement against an hourly history of `weeks` weeks, as much of it
    as runner.observe.record loads: the newest RECENT points and the same hour of every day."""
    rng = random.Random(1)
    at = dt.datetime(2026, 3, 2, 10, tzinfo=ZONE)
    hours = [at - dt.timedelta(hours=h) for h in range(weeks * 168, 0, -1)
             if h <= anomalies.RECENT or h % 24 == 0]
    started = time.perf_counter()
    for relation in measured:
        metrics = anomalies.metrics_of(relation.rows, 1.0, relation.columns)
        for (metric, _), value in metrics.items():
            history = [anomalies.Point(h, value * math.exp(rng.gauss(0, 0.02))) for h in hours]
            anomalies.judge(metric, value, at, history, zone=ZONE)
    return time.perf_counter() - started


def engine_only(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine-only", action="store_true")
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per source table (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each kind is kept")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="keep the project and warehouse here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-observe-"))
    work.mkdir(parents=True, exist_ok=True)
    project_dir, warehouse = work / "project", work / "warehouse.duckdb"
    if project_dir.exists():
        shutil.rmtree(project_dir)
    plan = synth.plan(args.models, args.seed)
    synth.write_project(plan, project_dir)
    warehouse.unlink(missing_ok=True)
    con = duckdb.connect(str(warehouse))
    synth.create_sources(con, args.rows, args.seed)
    con.close()
    url = f"duckdb:///{warehouse}"
    print(f"observe benchmark: {args.models} models, {plan.n_tests} tests, 4 sources x {args.rows} rows, "
          f"{args.threads} threads, {args.repeat} rounds, work dir {work}")

    project = load_project(str(project_dir))
    manifest = compile_project(project, Target(name="prod", schema=SCHEMA, type="duckdb", threads=args.threads),
                               set(), False)
    warm, _ = build(manifest, url, args.threads, measure=False)
    print(f"  warm-up build      {warm:8.2f} s")
    plain: list[float] = []
    measured: list[float] = []
    relations: list[stats.RelationStats] = []
    for round_no in range(args.repeat):
        order = (False, True) if round_no % 2 == 0 else (True, False)
        for measure in order:
            seconds, taken = build(manifest, url, args.threads, measure=measure)
            (measured if measure else plain).append(seconds)
            relations = taken or relations
            print(f"  round {round_no + 1} {'measured' if measure else 'plain':<9}{seconds:8.2f} s")
    best_plain, best_measured = min(plain), min(measured)
    ratio = best_measured / best_plain
    judge_s = detector_seconds(relations)
    columns = sum(len(r.columns) for r in relations)
    result = {
        "models": args.models, "rows_per_source": args.rows, "threads": args.threads, "rounds": args.repeat,
        "plain_seconds": plain, "measured_seconds": measured, "best_plain": best_plain,
        "best_measured": best_measured, "ratio": ratio, "target": TARGET, "measured_relations": len(relations),
        "measured_columns": columns, "measure_query_seconds": round(sum(r.seconds for r in relations), 3),
        "detector_seconds": round(judge_s, 3),
        "detector_ms_per_model": round(1000 * judge_s / max(1, len(relations)), 2),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "observe-engine.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n  best plain build     {best_plain:8.2f} s")
    print(f"  best measured build  {best_measured:8.2f} s   ({len(relations)} relations, {columns} columns; "
          f"measuring queries {result['measure_query_seconds']:.2f} s of thread time)")
    print(f"  ratio measured/plain {ratio:8.3f}   target <= {TARGET:.2f}  {'PASS' if ratio <= TARGET else 'FAIL'}")
    print(f"  detector             {judge_s:8.2f} s   ({result['detector_ms_per_model']} ms per model, "
          f"{judge_s / best_plain:.1%} of the plain build; spread over the run's workers)")
    print(f"  figures: {args.out / 'observe-engine.json'}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--engine-only" in argv:
        return engine_only(argv)
    import observe_run

    return observe_run.main(argv)


if __name__ == "__main__":
    sys.exit(main())
