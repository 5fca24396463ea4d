"""Save latency of the data-models repository on 1,000 and 10,000 model files (issue 4, item 9).

For each size, a bare repository is generated with plumbing in one commit (N models in models/,
each with its own yml: 2N files, written as loose objects by the store with trees built in
memory; no N commits), then a number of saves of random models are timed:

* service: `models_service.changes.save_model` as the API and pages call it (permission checks,
  conflict check, git commit, audit entry, index rows), on a throwaway SQLite database;
* git:     the git part alone (`GitStore.commit` with the same file edits).

It prints p50 / p95 / max per size and PASS/FAIL against the target p95 < 100 ms at 10,000 files
(the service figure), and writes bench/out/store.json. Not a unit test; exit 0 unless something fails.

`--concurrent N` measures RELIABILITY L1 instead: N threads released together each save a different
model (`changes.save_model`) on one change request, like N requests served at once; every round
uses a new change. It prints p50 / p95 / max of the N latencies per round and over all rounds,
how long the saves spent in `GitStore.commit` (waiting for the branch and committing) against the
database work after it, and checks what L1 asks: N commits on the branch, every acknowledged sha
on it, head_sha at the tip, `git fsck --full` clean, no lock file left. Target: p95 < 2 s. All in
one interpreter (one GIL, no HTTP): RELIABILITY L1 as production serves it, over HTTP to gunicorn's
worker processes, is `bench/reliability.py --only L1` (tests/reliability/test_saves.py).
`--models 0` saves N new models into the bare skeleton (as tests/models_service/test_concurrency.py
does); `--database-url` runs on PostgreSQL (a throwaway database is created and dropped there).

    .venv/bin/python bench/store.py                 # 1,000 and 10,000 models, 200 saves each
    .venv/bin/python bench/store.py --models 10000 --saves 500
    .venv/bin/python bench/store.py --concurrent 100 --models 1000 --rounds 5
    .venv/bin/python bench/store.py --concurrent 100 --models 0 \
        --database-url postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 100.0
TARGET_AT = 10_000
CONCURRENT_TARGET_MS = 2000.0  # RELIABILITY L1: p95 of 100 concurrent saves on one change


def setup_django(work: Path, database_url: str | None = None) -> None:
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(DMAAS_DEBUG="1", DMAAS_VAR_DIR=str(work / "var"), DJANGO_SETTINGS_MODULE="portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def generate(path: Path, n: int) -> float:
    """A repository with the portal's skeleton plus n models, in one commit on main."""
    from django.conf import settings

    from models_service.git_store import MAIN_REF, Edit
    from models_service.project_files import ModelSpec, dump_properties
    from models_service.repo import PORTAL, forget_stores, get_store

    settings.DMAAS_REPO = str(path)
    forget_stores()
    store = get_store()
    started = time.perf_counter()
    files: dict[str, bytes] = {}
    for i in range(n):
        name = f"model_{i:05d}"
        parent = f"model_{i - 1:05d}" if i else None
        sql = f"select {i} as id, 'x{i}' as label" + (f" from {{{{ ref('{parent}') }}}}" if parent else "") + "\n"
        files[f"models/{name}.sql"] = sql.encode()
        files[f"models/{name}.yml"] = dump_properties([ModelSpec(name, f"Model number {i}")]).encode()
    store.commit(MAIN_REF, lambda snap: Edit(files, f"Generate {n} models"), author=PORTAL)
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def figures(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
            "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1), "saves": len(ms)}


def bench_size(work: Path, n: int, saves: int, seed: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from models_service import changes, index, model_files
    from models_service.access import Role
    from models_service.git_store import Edit, Identity
    from models_service.project_files import ColumnSpec, ModelSpec
    from models_service.repo import get_store

    path = work / f"repo-{n}.git"
    generate_seconds = generate(path, n)
    store = get_store()
    reindex_started = time.perf_counter()
    index.rebuild(store)
    reindex_seconds = time.perf_counter() - reindex_started

    user, _ = get_user_model().objects.get_or_create(username=f"bench{n}", defaults={
        "email": "bench@example.com", "first_name": "Bench", "last_name": "Analyst"})
    user.groups.add(Group.objects.get_or_create(name=Role.ANALYST.value)[0])
    change = changes.open_change(user, f"Benchmark {n}")
    rng = random.Random(seed)

    service = []
    for i in range(saves):
        name = f"model_{rng.randrange(n):05d}"
        spec = ModelSpec(name, f"Edited {i}", columns=[ColumnSpec("id", "key"), ColumnSpec("label")])
        started = time.perf_counter()
        changes.save_model(user, change, name, f"select {i} as id, 'edit {i}' as label\n", spec)
        service.append(time.perf_counter() - started)

    git = []
    who = Identity("Bench Analyst", "bench@example.com")
    for i in range(saves):
        name = f"model_{rng.randrange(n):05d}"
        spec = ModelSpec(name, f"Git only {i}")
        started = time.perf_counter()
        store.commit(change.branch, lambda snap, name=name, spec=spec, i=i: Edit(
            model_files.save_files(snap, name, f"select {i} as id\n", spec)[0], f"Update {name}"), author=who)
        git.append(time.perf_counter() - started)

    fsck = subprocess.run(["git", "--git-dir", str(path), "fsck", "--full", "--no-dangling", "--no-progress"],
                          capture_output=True)
    return {
        "models": n, "files": 2 * n, "generate_seconds": round(generate_seconds, 2),
        "reindex_seconds": round(reindex_seconds, 2), "service": figures(service), "git": figures(git),
        "fsck_clean": fsck.returncode == 0 and not fsck.stdout.strip() and not fsck.stderr.strip(),
    }


# --------------------------------------------------------------------------- RELIABILITY L1


def throwaway_database(url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the PostgreSQL server of `url`, and a function that drops it."""
    import psycopg

    name = f"dmaas_bench_store_{os.getpid()}"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return url.rsplit("/", 1)[0] + "/" + name, drop


def bench_concurrent(work: Path, n_models: int, saves: int, rounds: int, served_at_once: int, seed: int) -> dict:
    """`saves` threads released together, each saving a different model on one change; `rounds` times."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from models_service import changes, index
    from models_service.access import Role
    from models_service.git_store import GitStore
    from models_service.models import ChangeRequest
    from models_service.project_files import ColumnSpec, ModelSpec
    from models_service.repo import forget_stores, get_store

    path = work / f"repo-concurrent-{n_models}.git"
    if n_models:
        generate(path, n_models)
    else:
        settings.DMAAS_REPO = str(path)
        forget_stores()
    store = get_store()
    index.rebuild(store)
    user, _ = get_user_model().objects.get_or_create(username=f"concurrent{n_models}", defaults={
        "email": "bench@example.com", "first_name": "Bench", "last_name": "Analyst"})
    user.groups.add(Group.objects.get_or_create(name=Role.ANALYST.value)[0])
    rng = random.Random(seed)

    # Split each save into its time in GitStore.commit (queueing for the branch, committing) and the rest
    # (waiting for a free request slot, checks before the commit, database rows after it).
    in_commit: dict[int, float] = {}
    original = GitStore.commit

    def timed_commit(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            in_commit[threading.get_ident()] = time.perf_counter() - started

    GitStore.commit = timed_commit
    all_latencies: list[float] = []
    round_figures, checks = [], []
    try:
        for r in range(rounds):
            change = changes.open_change(user, f"Concurrent {r + 1}")
            if n_models:
                models = [f"model_{i:05d}" for i in rng.sample(range(n_models), saves)]
            else:
                models = [f"new_{r}_{i:03d}" for i in range(saves)]
            barrier = threading.Barrier(saves)
            slots = threading.BoundedSemaphore(served_at_once)
            outcomes: list = [None] * saves

            def one(i: int, change=change, models=models, barrier=barrier, slots=slots, outcomes=outcomes) -> None:
                name = models[i]
                spec = ModelSpec(name, f"Edited concurrently {i}", columns=[ColumnSpec("id", "key")])
                barrier.wait()
                started = time.perf_counter()
                with slots:
                    try:
                        result = changes.save_model(user, change, name, f"select {i} as id\n", spec)
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        result = exc
                    finally:
                        connection.close()
                outcomes[i] = (result, time.perf_counter() - started, in_commit.get(threading.get_ident(), 0.0))

            threads = [threading.Thread(target=one, args=(i,)) for i in range(saves)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            errors = [o for o, _, _ in outcomes if isinstance(o, Exception)]
            latencies = [s for _, s, _ in outcomes]
            git_seconds = [g for _, _, g in outcomes]
            rest = [s - g for _, s, g in outcomes]
            all_latencies += latencies
            tip = store.tip(change.branch)
            base = ChangeRequest.objects.get(pk=change.pk).base_sha
            commits = store.count_commits(base, tip)
            on_branch = set(store.git.out("rev-list", tip, f"^{base}", "--").split())
            acknowledged = {o.sha for o, _, _ in outcomes if not isinstance(o, Exception)}
            head = ChangeRequest.objects.get(pk=change.pk).head_sha
            ok = (not errors and commits == saves and acknowledged <= on_branch and len(acknowledged) == saves
                  and head == tip)
            checks.append(ok)
            figure = figures(latencies)
            figure.update(round=r + 1, wall_s=round(wall, 2), errors=len(errors), commits=commits, checks_ok=ok,
                          in_commit_mean_ms=round(statistics.fmean(git_seconds) * 1000, 1),
                          other_mean_ms=round(statistics.fmean(rest) * 1000, 1),
                          retried=sum(1 for o, _, _ in outcomes if not isinstance(o, Exception) and o.attempts > 1))
            if errors:
                figure["first_error"] = repr(errors[0])[:300]
            round_figures.append(figure)
    finally:
        GitStore.commit = original
    clean, text = store.fsck()
    locks = [str(p) for p in path.rglob("*.lock")]
    return {"models": n_models, "concurrent": saves, "served_at_once": served_at_once, "database": connection.vendor,
            "rounds": round_figures, "all": figures(all_latencies), "checks_ok": all(checks),
            "fsck_clean": clean, "fsck_output": text[:500], "lock_files": locks}


def print_concurrent(result: dict) -> bool:
    print(f"L1: {result['concurrent']} concurrent saves of different models on one change, {result['models']} "
          f"models in the repository, {result['database']}, {result['served_at_once']} served at once")
    print(f"{'round':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'wall s':>7} {'commit ms':>10} {'other ms':>9}"
          f" {'retried':>7}  checks")
    for f in result["rounds"]:
        print(f"{f['round']:>5} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['max_ms']:>8} {f['wall_s']:>7} "
              f"{f['in_commit_mean_ms']:>10} {f['other_mean_ms']:>9} {f['retried']:>7}  "
              f"{'ok' if f['checks_ok'] else 'FAILED: ' + str(f.get('first_error', f))}")
    a = result["all"]
    ok = (a["p95_ms"] < CONCURRENT_TARGET_MS and result["checks_ok"] and result["fsck_clean"]
          and not result["lock_files"])
    print(f"  all {a['p50_ms']:>8} {a['p95_ms']:>8} {a['max_ms']:>8}   fsck {'clean' if result['fsck_clean'] else 'NOT CLEAN'}"
          f", lock files left: {len(result['lock_files'])}")
    print(f"target: p95 < {CONCURRENT_TARGET_MS:.0f} ms, 0 lost, 0 errors, fsck clean, no lock left -> "
          f"{'PASS' if ok else 'FAIL'}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs; the figures are inflated")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, action="append", help="repository size (repeatable)")
    parser.add_argument("--saves", type=int, default=200, help="saves timed per size and layer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help="keep repositories and the database here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--concurrent", type=int, metavar="N",
                        help="RELIABILITY L1: N concurrent saves of different models on one change")
    parser.add_argument("--rounds", type=int, default=3, help="with --concurrent: rounds, each on a new change")
    parser.add_argument("--served-at-once", type=int,
                        help="with --concurrent: requests served at once (default N; 40 on PostgreSQL, whose "
                             "default max_connections is 100)")
    parser.add_argument("--database-url", help="the portal's tables on this PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    drop = None
    database_url = args.database_url
    if database_url:
        database_url, drop = throwaway_database(database_url)
    setup_django(work, database_url)
    try:
        if args.concurrent:
            return run_concurrent(args, work)
        return run_sequential(args, work)
    finally:
        if drop is not None:
            drop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def environment() -> dict:
    return {"python": platform.python_version(), "git": subprocess.run(
        ["git", "--version"], capture_output=True, text=True).stdout.strip(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()}


def run_concurrent(args: argparse.Namespace, work: Path) -> int:
    from django.db import connection

    sizes = args.models or [1_000]
    served = args.served_at_once or (min(args.concurrent, 40) if connection.vendor == "postgresql" else args.concurrent)
    results, verdicts = [], []
    for n in sizes:
        result = bench_concurrent(work, n, args.concurrent, args.rounds, served, args.seed)
        results.append(result)
        verdicts.append(print_concurrent(result))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"store-concurrent-{connection.vendor}.json"
    out.write_text(json.dumps({"target": {"p95_ms": CONCURRENT_TARGET_MS, "pass": all(verdicts)},
                               "results": results, "environment": environment()}, indent=2))
    print(f"wrote {out}")
    return 0


def run_sequential(args: argparse.Namespace, work: Path) -> int:
    sizes = args.models or [1_000, 10_000]

    results = []
    print(f"{'models':>7} {'layer':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   (generate s, reindex s, fsck)")
    for n in sizes:
        result = bench_size(work, n, args.saves, args.seed)
        results.append(result)
        for layer in ("service", "git"):
            f = result[layer]
            extra = (f"   ({result['generate_seconds']}, {result['reindex_seconds']}, "
                     f"{'clean' if result['fsck_clean'] else 'NOT CLEAN'})") if layer == "service" else ""
            print(f"{n:>7} {layer:>8} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['max_ms']:>8}{extra}")

    verdicts = []
    for r in results:
        if r["models"] == TARGET_AT:
            ok = r["service"]["p95_ms"] < TARGET_MS and r["fsck_clean"]
            verdicts.append(ok)
            print(f"target: save p95 < {TARGET_MS:.0f} ms at {TARGET_AT:,} models: "
                  f"{r['service']['p95_ms']} ms -> {'PASS' if ok else 'FAIL'}")
    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load[0]:.1f} on {os.cpu_count()} CPUs; the figures are inflated")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"target": {"p95_ms": TARGET_MS, "at_models": TARGET_AT, "pass": all(verdicts) if verdicts else None},
              "results": results, "environment": environment()}
    (args.out / "store.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'store.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
