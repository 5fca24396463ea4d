"""The long reliability suite (RELIABILITY.md L3, L4, L6, L7, F4 at full length): not for CI.

Each case is the same pytest test as CI's short version (tests/reliability), run with the long
settings through environment variables; every test writes its figure to bench/out/reliability.json,
and this prints the table of them at the end.

    .venv/bin/python bench/reliability.py                       # L3 10 min, L4 10 min at 200 rps, L7 1,000,
                                                                # F4 Redis down 5 min, L6 soak 30 min
    .venv/bin/python bench/reliability.py --minutes 2 --soak-minutes 5 --rps 100   # a quicker look
    .venv/bin/python bench/reliability.py --only L4 L6

Needs what the tests need: the machine's PostgreSQL (DMAAS_TEST_POSTGRES_URL) for the portal's and the
warehouse's throwaway databases, redis-server and PostgreSQL 15's initdb for the private servers.
Exit status: 0 when every case passed its threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "bench" / "out" / "reliability.json"
TESTS = {
    "L3": "tests/reliability/test_load.py::test_l3_previews_during_an_hourly_run",
    "L4": "tests/reliability/test_load.py::test_l4_the_api_at_a_steady_rate_and_429_with_retry_after_over_quota",
    "L7": "tests/reliability/test_faults_queue.py::test_l7_tasks_queued_during_an_outage_drain_each_exactly_once",
    "F4": "tests/reliability/test_faults_broker.py",
    "L6": "tests/reliability/test_soak.py",
    "F1": "tests/reliability/test_faults_deploy.py",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="L3 and L4 duration (default 10)")
    parser.add_argument("--users", type=int, default=50, help="L3 previewing users (default 50)")
    parser.add_argument("--rps", type=float, default=200, help="L4 rate (default 200)")
    parser.add_argument("--tasks", type=int, default=1000, help="L7 tasks queued (default 1000)")
    parser.add_argument("--outage-minutes", type=float, default=5, help="F4 Redis outage (default 5)")
    parser.add_argument("--soak-minutes", type=float, default=30, help="L6 soak (default 30; 1440 for 24 h)")
    parser.add_argument("--only", nargs="*", choices=sorted(TESTS), help="these cases only")
    args = parser.parse_args()
    env = {**os.environ, "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
           "DMAAS_RELIABILITY_L3_SECONDS": str(args.minutes * 60), "DMAAS_RELIABILITY_L3_USERS": str(args.users),
           "DMAAS_RELIABILITY_L4_SECONDS": str(args.minutes * 60), "DMAAS_RELIABILITY_L4_RPS": str(args.rps),
           "DMAAS_RELIABILITY_L7_TASKS": str(args.tasks),
           "DMAAS_RELIABILITY_F4_SECONDS": str(args.outage_minutes * 60),
           "DMAAS_RELIABILITY_SOAK_SECONDS": str(args.soak_minutes * 60), "DMAAS_RELIABILITY_F1": "1"}
    results: dict[str, tuple[str, float]] = {}
    for case in args.only or list(TESTS):
        began = time.monotonic()
        print(f"--- {case}: {TESTS[case]}", flush=True)
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "-m",
                                "reliability", TESTS[case]], cwd=ROOT, env=env)
        results[case] = ("PASS" if code == 0 else "FAIL", time.monotonic() - began)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    print(f"\n{'case':<6} {'verdict':<7} {'took':>7}  figure")
    for case, (verdict, took) in results.items():
        line = figures.get(case, {}).get("line", "(no figure written)")
        print(f"{case:<6} {verdict:<7} {took:>6.0f}s  {line}")
    return 0 if all(v == "PASS" for v, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
