"""Save latency of the data-models repository on 1,000 and 10,000 model files (issue 4, item 9).

For each size, a bare repository is generated with plumbing in one commit (N models in models/,
each with its own yml: 2N files, written by one `hash-object --stdin-paths` and trees built in
memory; no N commits), then a number of saves of random models are timed:

* service: `models_service.changes.save_model` as the API and pages call it (permission checks,
  conflict check, git commit, audit entry, index rows), on a throwaway SQLite database;
* git:     the git part alone (`GitStore.commit` with the same file edits).

It prints p50 / p95 / max per size and PASS/FAIL against the target p95 < 100 ms at 10,000 files
(the service figure), and writes bench/out/store.json. Not a unit test; exit 0 unless something fails.

    .venv/bin/python bench/store.py                 # 1,000 and 10,000 models, 200 saves each
    .venv/bin/python bench/store.py --models 10000 --saves 500
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 100.0
TARGET_AT = 10_000


def setup_django(work: Path) -> None:
    os.environ.pop("DATABASE_URL", None)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, action="append", help="repository size (repeatable)")
    parser.add_argument("--saves", type=int, default=200, help="saves timed per size and layer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help="keep repositories and the database here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    sizes = args.models or [1_000, 10_000]
    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    setup_django(work)

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
              "results": results,
              "environment": {"python": platform.python_version(), "git": subprocess.run(
                  ["git", "--version"], capture_output=True, text=True).stdout.strip(), "cpus": os.cpu_count(),
                  "load_average": load}}
    (args.out / "store.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'store.json'}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
