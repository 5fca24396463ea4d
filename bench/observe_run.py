"""bench/observe.py's default: the hourly run with and without measuring (see bench/observe.py).

Not run on its own: `.venv/bin/python bench/observe.py [options]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import run as runs_bench  # noqa: E402  (bench/run.py: workers, throwaway databases, the project)

TARGET = 1.10
SCHEMA = "analytics"
SETTLE_SECONDS = 5.0  # > DMAAS_WAREHOUSE_LINGER_SECONDS (2 s): the file is closed before the timed run
HISTORY_WEEKS = 8  # runner.observe.anomalies.SEASON_WEEKS: as far back as the detector looks


def seed_history(now: dt.datetime) -> int:
    """Give each model a history copied from its newest measurement: every hour of the last day, and
    the same and the next hour of each day of the last HISTORY_WEEKS weeks (the detector reads the
    newest 24 and the same local hour of the last 8 weeks). Rows vary by a few per mille, as a quiet
    table does, and the column statistics by about what a 10,000-row sample moves between builds (a
    history without that spread makes every sampled statistic look anomalous, and the timed run would
    pay for hundreds of anomalies a real history would not raise). Returns the rows written."""
    import random

    from runner.models import MeasureKind, Measurement

    rng = random.Random(7)
    latest: dict[str, Measurement] = {}
    for m in Measurement.objects.filter(kind=MeasureKind.PRODUCTION, error="").order_by("measured_at"):
        latest[m.model] = m
    hours = sorted({h for h in range(1, 25)} | {24 * d + k for d in range(1, 7 * HISTORY_WEEKS + 1) for k in (-1, 0)})
    batch: list[Measurement] = []
    written = 0
    for m in latest.values():
        for h in hours:
            rows = None if m.rows is None else max(0, round(m.rows * (1 + rng.gauss(0, 0.003))))
            batch.append(Measurement(model=m.model, kind=m.kind, schema=m.schema, measured_at=now - dt.timedelta(hours=h),
                                     rows=rows, seconds=m.seconds, bytes=m.bytes, measure_seconds=m.measure_seconds,
                                     columns=[_jitter(c, rng) for c in m.columns or []]))
        if len(batch) >= 5000:
            Measurement.objects.bulk_create(batch)
            written += len(batch)
            batch = []
    Measurement.objects.bulk_create(batch)
    return written + len(batch)


def _jitter(column: dict[str, Any], rng: Any) -> dict[str, Any]:
    out = dict(column)
    for key, spread in (("mean", 0.01), ("stddev", 0.01), ("distinct", 0.01)):
        value = out.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            moved = value * (1 + rng.gauss(0, spread))
            out[key] = round(moved) if isinstance(value, int) else moved
    fraction = out.get("null_fraction")
    if isinstance(fraction, int | float) and fraction > 0:
        out["null_fraction"] = min(1.0, max(0.0, fraction + rng.gauss(0, 0.002)))
    return out


def wait_judged(run_id: int, workers: Any, timeout: float) -> float:
    """Wait until the run's measurements are measured and judged (runner.tasks.judge_run, queued as the
    run closed); seconds from the run's end until none is pending (polled every 0.1 s)."""
    from django.utils import timezone

    from runner.models import Measurement, Run

    deadline = time.monotonic() + timeout
    measured = Measurement.objects.filter(run_id=run_id, kind="production")
    while measured.filter(pending=True).exists() or not measured.exists():
        workers.check()
        if time.monotonic() > deadline:
            raise runs_bench.BenchFailed(f"the measurements of run {run_id} were not judged in {timeout:.0f} s")
        time.sleep(0.1)
    return (timezone.now() - Run.objects.get(pk=run_id).finished_at).total_seconds()


def wait_for_scans(models: int, timeout: float) -> int:
    """Wait until the warm-up's PII scans are done (one audit entry per model; or no new one for 20 s),
    or `timeout`."""
    from models_service.models import AuditEntry
    from runner.observe.pii import SCAN_ACTION

    deadline = time.monotonic() + timeout
    done, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = AuditEntry.objects.filter(action=SCAN_ACTION).values("object_id").distinct().count()
        if now != done:
            done, still = now, time.monotonic()
        if done >= models or time.monotonic() - still > 20:
            break
        time.sleep(1)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The hourly run with and without measuring (issue 9, item 1).")
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per source table (default 200000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2, as scripts/prod)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of (plain, measured); the best of each kept")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--concurrency", type=int, default=4, help="DMAAS_WAREHOUSE_CONCURRENCY (default 4)")
    parser.add_argument("--database-url", default=runs_bench.DEFAULT_POSTGRES)
    parser.add_argument("--redis-url", default=runs_bench.DEFAULT_REDIS)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take (default 1800)")
    parser.add_argument("--work", type=Path, help="keep the repository, warehouse and worker logs here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-observe-"))
    work.mkdir(parents=True, exist_ok=True)
    var_dir = work / "var"
    prefix = f"dmaas-bench-observe-{os.getpid()}-{secrets.token_hex(3)}:"
    drop = None
    status = 0
    started = time.perf_counter()
    try:
        portal_url, drop = runs_bench.throwaway_database(args.database_url, f"dmaas_bench_observe_{os.getpid()}")
        (work / "warehouse").mkdir(exist_ok=True)
        warehouse_url = f"duckdb:///{work / 'warehouse' / 'warehouse.duckdb'}"
        (work / "settings").mkdir(exist_ok=True)
        (work / "settings" / "bench_run_settings.py").write_text(runs_bench.SETTINGS_MODULE)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONDONTWRITEBYTECODE", "DATABASE_URL", "DMAAS_MEASURE_BUILDS")}
        env.update(DJANGO_SETTINGS_MODULE="bench_run_settings", DATABASE_URL=portal_url,
                   PYTHONPATH=os.pathsep.join([str(work / "settings"), str(ROOT)]),
                   DMAAS_REPO=str(work / "data-models.git"), DMAAS_REPO_REMOTE="", DMAAS_WAREHOUSE=warehouse_url,
                   DMAAS_VAR_DIR=str(var_dir), DMAAS_SECRET_KEY=secrets.token_urlsafe(64), DMAAS_DEBUG="0",
                   DMAAS_WAREHOUSE_CONCURRENCY=str(args.concurrency), DMAAS_BENCH_REDIS_PREFIX=prefix)
        print(f"observe benchmark (the hourly run): {args.models} models, 4 sources x {args.rows} rows, "
              f"{args.workers} worker(s), {args.repeat} round(s), work dir {work}")
        runs_bench.setup_django(env, work / "settings")

        from django.utils import timezone

        from models_service.git_store import MAIN_REF, Edit
        from models_service.repo import PORTAL, get_store
        from runner.models import Schedule

        files = runs_bench.project_files(args.models, args.seed, work, portable=False)
        get_store().commit(MAIN_REF, lambda snap: Edit(files, f"{args.models} generated models"), author=PORTAL)
        runs_bench.create_sources(warehouse_url, args.rows, args.seed)
        schedule = Schedule.objects.get()  # the hourly default, made by migrate: every model
        staging = sorted(Path(p).stem for p in files if p.startswith("models/staging/") and p.endswith(".sql"))
        warmup = Schedule.objects.create(name="bench warm-up", cron="", select=" ".join(staging[:args.workers]))
        slots = iter(dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=h) for h in range(10_000))

        def one(measure: bool, scans: bool = False) -> dict[str, Any]:
            """One timed run on freshly started workers (after a warm-up of one model per worker). When
            measuring, the workers stay until the run's judging task is done (and, with `scans`, the PII
            scans it queued), so that no round's work spills into the next round's timing."""
            run_env = dict(env, CELERY_BROKER_URL=args.redis_url)
            if not measure:
                run_env["DMAAS_MEASURE_BUILDS"] = "0"
            app = runs_bench.sender("redis", args.redis_url, prefix, var_dir)
            try:
                with runs_bench.Workers(args.workers, "redis", run_env, work / "logs") as workers:
                    warm = runs_bench.one_run(app, warmup.pk, next(slots), workers, args.timeout)
                    if measure:
                        wait_judged(warm["run_id"], workers, args.timeout)
                    # both kinds of round start their timed run from the same state: the warm-up's
                    # warehouse file closed (its linger over) and the workers idle, however long the
                    # measured round's judging of the warm-up took
                    time.sleep(SETTLE_SECONDS)
                    best = runs_bench.one_run(app, schedule.pk, next(slots), workers, args.timeout)
                    if measure:
                        best["judged_seconds"] = wait_judged(best["run_id"], workers, args.timeout)
                        if scans:
                            best["scans"] = wait_for_scans(args.models, timeout=600)
            finally:
                app.close()
            return best

        t0 = time.perf_counter()
        first = one(True, scans=True)
        scanned = first["scans"]
        seeded = seed_history(timezone.now())
        print(f"  steady state: first measured run {first['wall_seconds']:.1f} s, PII scans {scanned}, "
              f"{seeded} history rows seeded ({time.perf_counter() - t0:.0f} s)")
        plain: list[float] = []
        measured: list[float] = []
        judged: list[float] = []
        for round_no in range(max(1, args.repeat)):
            for measure in ((False, True) if round_no % 2 == 0 else (True, False)):
                best = one(measure)
                (measured if measure else plain).append(best["wall_seconds"])
                after = (f"; judged {best['judged_seconds']:.1f} s after the run's end" if measure else "")
                if measure:
                    judged.append(best["judged_seconds"])
                print(f"  round {round_no + 1} {'measured' if measure else 'plain':<9}{best['wall_seconds']:8.2f} s  "
                      f"({best['nodes']} nodes, SQL {best['warehouse_seconds_sum']:.1f} s in tasks{after})", flush=True)
        ratio = min(measured) / min(plain)
        from django.db.models import Count

        from runner.models import Anomaly, Measurement

        result = {"mode": "hourly run", "models": args.models, "rows_per_source": args.rows, "workers": args.workers,
                  "rounds": args.repeat, "plain_seconds": plain, "measured_seconds": measured,
                  "best_plain": min(plain), "best_measured": min(measured), "ratio": ratio, "target": TARGET,
                  "judged_seconds_after_end": judged,
                  "pass": ratio <= TARGET, "measurements": Measurement.objects.count(),
                  "anomalies": Anomaly.objects.count(),
                  "anomalies_by_metric": dict(Anomaly.objects.values_list("metric").annotate(n=Count("id"))
                                              .values_list("metric", "n")),
                  "environment": runs_bench.environment(),
                  "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "seconds": round(time.perf_counter() - started, 1)}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "observe.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\n  best plain run       {min(plain):8.2f} s")
        print(f"  best measured run    {min(measured):8.2f} s   (anomalies raised in all: {result['anomalies']}: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(result['anomalies_by_metric'].items()))})")
        print(f"  ratio measured/plain {ratio:8.3f}   target <= {TARGET:.2f}  {'PASS' if ratio <= TARGET else 'FAIL'}")
        print(f"  anomalies judged     {min(judged):8.2f} s after the measured run's end (best; its judging task)")
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1) / 2:
            print(f"  warning: load average {load:.1f} on {os.cpu_count()} CPUs; the figures are noisy")
        print(f"  figures: {args.out / 'observe.json'}")
    except runs_bench.BenchFailed as err:
        print(f"\nBENCHMARK FAILED: {err}", file=sys.stderr)
        status = 1
    finally:
        runs_bench.clean_up(args, prefix, [drop] if drop is not None else [], work, status)
    return status
