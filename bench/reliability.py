"""The long reliability suite (RELIABILITY.md L1, L3, L4, L6, L7, F4, F1 at full length): not for CI.

Each case is a pytest test of tests/reliability (CI runs the short versions; L1, L3 and L4 on the
production shape are skipped there), run with the long settings through environment variables; every test writes
its figures to bench/out/reliability.json.
This reads them back and judges each against RELIABILITY.md's targets:

    L1  100 concurrent saves of 100 models        p95 < 2 s (the worst round's); 0 5xx; 100 commits a
        on one change, 3 rounds                   round; `git fsck --full` clean; no lock file left
    L3  50 users previewing beside hourly runs    preview p95 < 3 s (1,000 rows); run queue delay < 60 s;
                                                  0 errors; every run successful
    L4  the API at 200 rps                        achieved rate >= 95 % of offered; errors < 0.1 %;
                                                  p99 < 500 ms; over quota: 429 with Retry-After
    L6  soak on scripts/prod's processes          gunicorn workers' and the Celery worker's (with its pool)
                                                  RSS growth < 10 % (sum and worst process); open FDs
                                                  within 5 %; recycling off, so no process replaced
    L7  1,000 tasks queued with no worker         each executed exactly once, none lost
    F4  Redis down                                every save 200, none lost; outbox sent < 2 min after
                                                  recovery; health "degraded"
    F1  worker SIGKILLed mid-deploy               one deployment, none left running, no temporary relation

It prints each check (figure, target, PASS/FAIL), a verdict per case (FAIL also when the test itself
failed), and writes bench/out/reliability-long.json: the options, the machine (CPUs, load average
before and after each case) and every figure. Exit status 0 when every case passed.

    .venv/bin/python bench/reliability.py                       # L1 3 x 100 saves, L3 10 min x 50 users, L4 10 min
                                                                # at 200 rps, all on gunicorn; L7 1,000, F4 5 min,
                                                                # L6 30 min, F1
    .venv/bin/python bench/reliability.py --only L1 --l1-web-workers 5 --l1-rounds 5
    .venv/bin/python bench/reliability.py --l3-minutes 3 --l4-minutes 3 --soak-minutes 20 --only L3 L4 L7 L6
    .venv/bin/python bench/reliability.py --only L3 --l3-web-workers 0      # L3 on the embedded default
    .venv/bin/python bench/reliability.py --only L6 --soak-minutes 1440     # the 24 h soak
    .venv/bin/python bench/reliability.py --only L6 --soak-minutes 30 --soak-recycle  # with production's guards

L1, L3 and L4 run on the production shape by default, the one RELIABILITY.md's targets are for: gunicorn
(`--web-workers`, default 3 as scripts/prod, each worker with scripts/prod's 4 threads) on a PostgreSQL portal
database, the request quotas counted in a private Redis (L3's broker too). L1 sends each round's 100 saves
(PUT /api/v1/changes/<id>/models/m_NNN, one analyst's token) from threads of the pytest process released
together, to a real bare repository (`--l1-web-workers`, `--l1-rounds`; `--l1-threads 1` serves them
from sync workers). L3's previews run on a PostgreSQL warehouse as the read-only preview login that
`manage.py dmaas_warehouse_roles` makes, beside two `celery -A portal worker` processes building the
hourly runs. `--l3-web-workers 0` runs L3 as CI does (Django's test client in the pytest process, the
embedded DuckDB file, an in-process worker); `--web-workers 0` does that for L3 and serves L4 from
Django's live server thread.

Needs what the tests need: the machine's PostgreSQL (DMAAS_TEST_POSTGRES_URL) for the portal's and the
warehouse's throwaway databases, redis-server and PostgreSQL 15's initdb for the private servers.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "bench" / "out" / "reliability.json"
L3_EMBEDDED = "tests/reliability/test_load.py::test_l3_previews_during_an_hourly_run"
L4_CI = "tests/reliability/test_load.py::test_l4_the_api_at_a_steady_rate_and_429_with_retry_after_over_quota"
TESTS = {
    "L1": "tests/reliability/test_saves.py::test_l1_on_gunicorn_and_postgresql",
    "L3": "tests/reliability/test_load.py::test_l3_on_gunicorn_and_postgresql",
    "L4": "tests/reliability/test_load.py::test_l4_on_gunicorn_and_postgresql",
    "L7": "tests/reliability/test_faults_queue.py::test_l7_tasks_queued_during_an_outage_drain_each_exactly_once",
    "F4": "tests/reliability/test_faults_broker.py",
    "L6": "tests/reliability/test_soak.py",
    "F1": "tests/reliability/test_faults_deploy.py",
}
Check = tuple[str, str, str, bool]  # what, figure, target, passed


def _l1(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    rounds = f.get("per_round", [])
    inside = [r["server_ms"]["p50"] for r in rounds if r.get("server_ms")]
    commits = f.get("commits", [])
    threads = f.get("web_threads", 1)
    return [("saves a round x rounds", f"{f['saves']} x {f['rounds']} on {f['web_workers']} web workers "
             + (f"x {threads} threads" if threads > 1 else "(sync)"), f"= 100 x {args.l1_rounds}",
             f["saves"] == 100 and f["rounds"] == args.l1_rounds),
            ("save p95, worst round", f"{f['p95_worst_round_s']:.2f} s (all: p50 {f['p50_s']:.2f}, p95 "
             f"{f['p95_s']:.2f}, max {f['max_s']:.2f})", "< 2 s", f["p95_worst_round_s"] < 2),
            *([("  of it inside the server", f"p50 {min(inside):.0f}-{max(inside):.0f} ms by round", "(figure)",
                True)] if inside else []),
            ("5xx", str(f["errors_5xx"]), "0", f["errors_5xx"] == 0),
            ("commits a round", "/".join(map(str, commits)), f"= {f['saves']}",
             bool(commits) and all(c == f["saves"] for c in commits)),
            ("git fsck --full", "clean" if f["fsck"] == "clean" else "NOT clean", "clean", f["fsck"] == "clean"),
            ("lock files left", str(len(f["locks_left"])), "0", not f["locks_left"])]


def _l3(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    inside = f.get("server_ms")
    return [("previewing users", str(f["users"]), f"= {args.users}", f["users"] == args.users),
            ("preview p95 (1,000 rows)", f"{f['p95_s']:.2f} s (p50 {f['p50_s']:.2f} s)", "< 3 s", f["p95_s"] < 3),
            *([("  of it inside the server", f"p50 {inside['p50']:.0f} ms, p95 {inside['p95']:.0f} ms", "(figure)",
                True)] if inside else []),
            ("preview errors", f"{f['errors']} of {f['previews']}", "0", f["errors"] == 0),
            ("run queue delay, worst", f"{f['queue_delay_s']:.2f} s over {f.get('runs', 1)} runs", "< 60 s",
             f["queue_delay_s"] < 60),
            ("hourly runs successful", f"{f.get('runs', 1) - f.get('runs_failed', 0)} of {f.get('runs', 1)}", "all",
             f.get("run") == "success")]


def _l4(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    offered = f.get("offered_rps", args.rps)
    retry = f.get("retry_after")
    return [("rate achieved", f"{f['rps']:.0f} of {offered:g} rps (late p99 {f.get('late_p99_ms', 0):.0f} ms)",
             f">= {0.95 * offered:.0f} rps", f["rps"] >= 0.95 * offered),
            ("error rate", f"{f['error_rate']:.3%} of {f['calls']}", "< 0.1 %", f["error_rate"] < 0.001),
            ("p99", f"{f['p99_ms']:.0f} ms", "< 500 ms", f["p99_ms"] < 500),
            ("over quota", f"429, Retry-After {retry}", "429 + Retry-After", bool(retry) and int(retry) > 0)]


def _l6(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    """web: gunicorn's workers; worker: the Celery worker and its pool processes (sums, and the worst one)."""
    checks: list[Check] = []
    for kind in ("web", "worker"):
        growth, (before, after) = f[f"{kind}_rss_growth"], f[f"{kind}_fds"]
        detail = f.get(kind, {})
        checks.append((f"{kind} RSS growth, sum", f"{growth:+.1%} ({detail.get('slope_mb_per_h', 0):+.0f} MB/h fitted)",
                       "< 10 %", growth < 0.10))
        worst = f[f"{kind}_worst_process_growth"]
        checks.append((f"{kind} RSS, worst process", f"{worst:+.1%}", "< 10 %", worst < 0.10))
        checks.append((f"{kind} open FDs, sum", f"{before} -> {after}", "within 5 %",
                       abs(after - before) <= 0.05 * before))
        replaced = f[f"{kind}_replaced"]
        if f.get("recycle"):
            checks.append((f"{kind} replaced", str(replaced), "(figure: recycling on)", True))
        else:
            checks.append((f"{kind} replaced", str(replaced), "0 (recycling off)", replaced == 0))
    return checks


def _l7(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    return [("queued", str(f["queued"]), f"= {args.tasks}", f["queued"] == args.tasks),
            ("executed", str(f["executed"]), f"= {args.tasks}", f["executed"] == args.tasks),
            ("built", str(f["built"]), f"= {args.tasks}", f["built"] == args.tasks),
            ("duplicates", str(f["duplicates"]), "0", f["duplicates"] == 0)]


def _f4(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    return [("saves answered 200", f"{f['ok']} of {f['saves']}", "all", f["ok"] == f["saves"]),
            ("saves lost", str(f["lost"]), "0", f["lost"] == 0),
            ("outbox sent after recovery", f"{f['drained_s']:.1f} s", "< 120 s", f["drained_s"] < 120),
            ("health while down", str(f["health_down"]), "degraded", f["health_down"] == "degraded")]


def _f1(f: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    return [("deployment records", str(f["records"]), "1", f["records"] == 1),
            ("left running", str(f["running"]), "0", f["running"] == 0),
            ("temporary relations left", str(f["leftovers"]), "0", f["leftovers"] == 0),
            ("redelivered after", f"{f['redelivered_s']:.0f} s", "(figure)", True)]


JUDGES: dict[str, Callable[[dict[str, Any], argparse.Namespace], list[Check]]] = {
    "L1": _l1, "L3": _l3, "L4": _l4, "L6": _l6, "L7": _l7, "F4": _f4, "F1": _f1}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="L3 and L4 duration (default 10)")
    parser.add_argument("--l3-minutes", type=float, help="L3 duration (default --minutes)")
    parser.add_argument("--l4-minutes", type=float, help="L4 duration (default --minutes)")
    parser.add_argument("--users", type=int, default=50, help="L3 previewing users (default 50)")
    parser.add_argument("--think", type=float, default=0, help="L3 seconds a user waits between previews (default 0)")
    parser.add_argument("--rps", type=float, default=200, help="L4 rate offered (default 200)")
    parser.add_argument("--web-workers", type=int, default=3,
                        help="L3 and L4 gunicorn workers (default 3, scripts/prod's); 0: L3 on the embedded "
                             "default, L4 on Django's live server thread")
    parser.add_argument("--l3-web-workers", type=int,
                        help="L3 gunicorn workers (default --web-workers); 0: L3 on the embedded default")
    parser.add_argument("--l1-web-workers", type=int,
                        help="L1 gunicorn workers (default --web-workers, or 3 when that is 0)")
    parser.add_argument("--l1-threads", type=int, default=4,
                        help="L1 threads per gunicorn worker (default 4, scripts/prod's; 1: sync workers)")
    parser.add_argument("--l1-rounds", type=int, default=3, help="L1 rounds of 100 saves, each on a new change "
                                                                 "(default 3)")
    parser.add_argument("--tasks", type=int, default=1000, help="L7 tasks queued (default 1000)")
    parser.add_argument("--outage-minutes", type=float, default=5, help="F4 Redis outage (default 5)")
    parser.add_argument("--soak-minutes", type=float, default=30, help="L6 soak (default 30; 1440 for 24 h)")
    parser.add_argument("--soak-recycle", action="store_true",
                        help="L6 with production's recycling guards on (default off: each process measured whole)")
    parser.add_argument("--only", nargs="*", choices=sorted(TESTS), help="these cases only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "reliability-long.json")
    args = parser.parse_args()
    l3 = args.minutes if args.l3_minutes is None else args.l3_minutes
    l4 = args.minutes if args.l4_minutes is None else args.l4_minutes
    if args.l3_web_workers is None:
        args.l3_web_workers = args.web_workers
    if args.l1_web_workers is None:
        args.l1_web_workers = args.web_workers or 3
    env = {**os.environ, "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
           "DMAAS_RELIABILITY_L1_GUNICORN": str(args.l1_web_workers),
           "DMAAS_RELIABILITY_L1_THREADS": str(args.l1_threads), "DMAAS_RELIABILITY_L1_ROUNDS": str(args.l1_rounds),
           "DMAAS_RELIABILITY_L3_SECONDS": str(l3 * 60), "DMAAS_RELIABILITY_L3_USERS": str(args.users),
           "DMAAS_RELIABILITY_L3_THINK": str(args.think), "DMAAS_RELIABILITY_L3_GUNICORN": str(args.l3_web_workers),
           "DMAAS_RELIABILITY_L4_SECONDS": str(l4 * 60), "DMAAS_RELIABILITY_L4_RPS": str(args.rps),
           "DMAAS_RELIABILITY_L4_GUNICORN": str(args.web_workers),
           "DMAAS_RELIABILITY_L7_TASKS": str(args.tasks),
           "DMAAS_RELIABILITY_F4_SECONDS": str(args.outage_minutes * 60),
           "DMAAS_RELIABILITY_SOAK_SECONDS": str(args.soak_minutes * 60),
           "DMAAS_RELIABILITY_SOAK_RECYCLE": "1" if args.soak_recycle else "0"}
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "cpus": os.cpu_count(),
        "options": {"l3_minutes": l3, "l4_minutes": l4, **{k: v for k, v in vars(args).items()
                                                           if k not in ("out", "l3_minutes", "l4_minutes")}},
        "cases": {}}
    for case in args.only or list(TESTS):
        test = (L3_EMBEDDED if case == "L3" and not args.l3_web_workers
                else L4_CI if case == "L4" and not args.web_workers else TESTS[case])
        _forget(case)
        began, load_before = time.monotonic(), loadavg()
        print(f"--- {case}: {test} (load {load_before})", flush=True)
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "-m",
                                "reliability", test], cwd=ROOT, env=env)
        figure = _figures().get(case)
        checks = JUDGES[case](figure, args) if figure else []
        passed = code == 0 and bool(checks) and all(c[3] for c in checks)
        report["cases"][case] = {"verdict": "PASS" if passed else "FAIL", "test_exit": code,
                                 "took_s": round(time.monotonic() - began, 1), "load_before": load_before,
                                 "load_after": loadavg(), "checks": [dict(zip(("what", "figure", "target", "pass"), c,
                                                                              strict=True)) for c in checks],
                                 "figure": figure}
    _print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0 if all(c["verdict"] == "PASS" for c in report["cases"].values()) else 1


def _figures() -> dict[str, Any]:
    try:
        return json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        return {}


def _forget(case: str) -> None:
    """Drop an earlier run's figure of `case`, so a test that fails before recording shows none."""
    figures = _figures()
    if figures.pop(case, None) is not None:
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")


def _print(report: dict[str, Any]) -> None:
    print(f"\n{report['started']} on {report['host']}, {report['cpus']} CPUs")
    print(f"{'case':<5} {'check':<28} {'figure':<44} {'target':<20} result")
    for case, result in report["cases"].items():
        head = (f"{case:<5} {'= ' + result['verdict']:<28} took {result['took_s']:.0f} s, test exit "
                f"{result['test_exit']}, load {result['load_before']} -> {result['load_after']}")
        print(head)
        if not result["checks"]:
            print(f"{'':<5} (no figure written: the test failed before recording it)")
        for check in result["checks"]:
            print(f"{'':<5} {check['what']:<28} {check['figure']:<44} {check['target']:<20} "
                  f"{'PASS' if check['pass'] else 'FAIL'}")
        if result["figure"]:
            print(f"{'':<5} {result['figure']['line']}")


if __name__ == "__main__":
    sys.exit(main())
