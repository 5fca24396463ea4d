"""Orchestration overhead of production runs (issue 7, item 8): what a run costs beyond its SQL.

    overhead per node = (run wall time - pure SQL time) / nodes

A 500-model layered project (bench/synth.py, the generator of bench/engine.py) is committed to main
of a fresh data-models repository; small source tables (``--rows``, default 2000) keep the SQL cheap
so the overhead shows. Each configuration starts real workers, ``celery -A portal worker --pool=solo
-Q celery,interactive`` subprocesses (1, 2 and 4 of them), on one broker (Redis, then the embedded
filesystem transport), and fires the hourly schedule the way beat does (``runner.tasks.fire_schedule``
through the broker). The workers plan the run, dispatch every node as a ``runner.tasks.run_node``
task as its parents finish, build it through the warehouse lease and the warehouse's concurrency
slots, and close the run. A warm-up run of one staging model per worker first lets every worker
compile the project (once per commit and process; ``--cold`` skips it); then the run of every model
is timed (``--repeat`` times, the best kept), from sending the beat's message to the run's
``finished_at``. A worker goes on with a child its node made ready, or a node still queued, in the
same task (runner.nodes.execute_node: no broker round trip, and on DuckDB the file stays in one
process for DMAAS_WAREHOUSE_HOLD_SECONDS at a time); run.json counts those as ``continued``.

* nodes: every node of the run (models and their data tests, as the runs page lists them); tasks:
  the nodes dispatched as tasks of their own (a test that needs only its model runs inside the
  model's task, gated);
* pure SQL: the same compiled SQL (dmaas' compiler, the run's target), executed directly on one
  connection in dependency order - a model as ``create or replace table|view ... as (...)``, a test as
  its failure-count query - measured twice and the second kept (relations already exist, as in an
  hourly run). On DuckDB with one thread: the embedded warehouse is written by one process at a time
  (runner/warehouse.py leases), so more workers cannot add parallelism in the warehouse, only overlap
  the rest. On PostgreSQL (``--warehouse-url``) with min(workers, concurrency) threads.

The portal's tables are on a throwaway PostgreSQL database (created and dropped here, as
bench/store.py --database-url does), the warehouse a DuckDB file (or, with ``--warehouse-url``, a
throwaway database on that PostgreSQL server; the synthetic SQL is DuckDB's, so there the same graph
and tests get portable model bodies). Redis keys live under a prefix of this run's own (kombu's
``global_keyprefix``), deleted at the end.

It prints a table (broker, workers, nodes, run seconds, pure SQL seconds, overhead ms/node) and
PASS/FAIL against < 20 ms per node over Redis, and writes bench/out/run.json (also, per run: the time
its tasks spent in the warehouse's SQL, waiting in the queue and in the rest of the task). Not a test:
exit 0 unless something breaks (a worker, a run that fails). The default takes ~6 minutes on 2 CPUs,
nearly all of it the six timed runs.

    .venv/bin/python bench/run.py                          # 500 models, 1/2/4 workers, Redis + filesystem
    .venv/bin/python bench/run.py --workers 1 2 --brokers redis --repeat 3
    .venv/bin/python bench/run.py --models 100 --rows 500   # a quick look
    .venv/bin/python bench/run.py --warehouse-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/run.py --database-url postgresql://me@db:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/15 --work /tmp/bench-run   # keep logs and files
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import synth  # noqa: E402

TARGET_MS = 20.0  # per node, over Redis
SCHEMA = "analytics"
QUEUES = "celery,interactive"
DEFAULT_POSTGRES = os.environ.get("DMAAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_REDIS = os.environ.get("DMAAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SETTINGS_MODULE = '''\
"""The workers' settings for bench/run.py: the project's, with this run's Redis key prefix."""
import os as _os

from portal.settings import *  # noqa: F403
from portal.settings import CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_URL

if _os.environ.get("DMAAS_WAREHOUSE_HOLD_SECONDS"):
    DMAAS_WAREHOUSE_HOLD_SECONDS = float(_os.environ["DMAAS_WAREHOUSE_HOLD_SECONDS"])
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS,
                                       "global_keyprefix": _os.environ["DMAAS_BENCH_REDIS_PREFIX"]}
'''


class BenchFailed(Exception):
    pass


def forget_redis_keys(url: str, prefix: str) -> None:
    """Delete this run's keys (kombu's global_keyprefix) from the Redis at `url`; never raises."""
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


# --------------------------------------------------------------------------- databases


def throwaway_database(server_url: str, name: str) -> tuple[str, Callable[[], None]]:
    """A new database on the PostgreSQL server of `server_url`, and a function that drops it."""
    import psycopg

    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')

    def drop() -> None:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    return f"{base}/{name}", drop


# --------------------------------------------------------------------------- the project


def project_files(n_models: int, seed: int, work: Path, portable: bool) -> dict[str, bytes]:
    """The generated project as {path: bytes} for the repository (profiles.yml left out)."""
    project = synth.plan(n_models, seed)
    if portable:
        make_portable(project)
    folder = work / "project"
    if folder.exists():
        shutil.rmtree(folder)
    synth.write_project(project, folder)
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "profiles.yml"}


def make_portable(project: Any) -> None:
    """The same models, layers, parents and tests, with SQL that PostgreSQL runs too (the generated SQL
    is DuckDB's): every model is (id, v), unique on id, made of its parents joined on id."""
    sources = {synth.ORD: ("shop", "orders"), synth.CUS: ("shop", "customers"), synth.PRD: ("shop", "products"),
               synth.EVT: ("web", "events")}
    for model in project.models:
        if model.layer == "staging":
            source, table = sources[model.shape]
            model.sql = f"select id, id % 97 as v from {{{{ source('{source}', '{table}') }}}}\n"
        else:
            first, *others = model.parents
            joins = "".join(f"\nleft join {{{{ ref('{p}') }}}} p{i} on p{i}.id = p0.id"
                            for i, p in enumerate(others, 1))
            total = " + ".join(["p0.v"] + [f"coalesce(p{i}.v, 0)" for i in range(1, len(others) + 1)])
            model.sql = f"select p0.id, ({total}) % 1000003 as v\nfrom {{{{ ref('{first}') }}}} p0{joins}\n"
        if model.key:
            model.key = ("id", model.key[1])


def create_sources(warehouse_url: str, rows: int, seed: int) -> None:
    if warehouse_url.startswith("duckdb://"):
        import duckdb

        from runner.engine.adapters.duckdb import duckdb_path

        con = duckdb.connect(duckdb_path(warehouse_url))
        synth.create_sources(con, rows, seed)
        con.close()
        return
    import psycopg

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("create schema if not exists raw")
        for table in ("customers", "orders", "products", "events"):
            conn.execute(f"create table raw.{table} as select g::bigint as id from generate_series(1, {int(rows)}) g")


# --------------------------------------------------------------------------- pure SQL


def pure_sql(manifest: Any, warehouse_url: str, threads: int) -> dict[str, Any]:
    """The run's compiled SQL executed directly, in dependency order (see the module's docstring)."""
    from runner.engine.adapters.base import rel
    from runner.engine.compiler import test_query
    from runner.engine.execution import execution_graph

    graph = execution_graph(manifest, set(manifest.nodes), "build")
    parents = {u: list(ps) for u, ps in graph.parents.items()}
    postgres = not warehouse_url.startswith("duckdb://")

    def statements(uid: str) -> list[str]:
        node = manifest.nodes[uid]
        if node.resource_type == "test":
            return [test_query(manifest, uid)]
        schema, identifier = manifest.relations[uid]
        kind = "view" if node.materialized == "view" else "table"
        sql = manifest.compiled[uid]
        if postgres:
            return [f"drop {kind} if exists {rel(schema, identifier)} cascade",
                    f"create {kind} {rel(schema, identifier)} as (\n{sql}\n)"]
        return [f"create or replace {kind} {rel(schema, identifier)} as (\n{sql}\n)"]

    if postgres:
        import psycopg

        local = threading.local()
        opened: list[Any] = []

        def cursor() -> Any:
            if getattr(local, "conn", None) is None:
                local.conn = psycopg.connect(warehouse_url, autocommit=True)
                opened.append(local.conn)
            return local.conn.cursor()

        def close() -> None:
            for conn in opened:
                conn.close()
        cursor().execute(f'create schema if not exists "{SCHEMA}"')
    else:
        import duckdb

        from runner.engine.adapters.duckdb import duckdb_path

        db = duckdb.connect(duckdb_path(warehouse_url))
        db.execute(f'create schema if not exists "{SCHEMA}"')
        local = threading.local()

        def cursor() -> Any:
            if getattr(local, "cur", None) is None:
                local.cur = db.cursor()
            return local.cur

        def close() -> None:
            db.close()

    def execute(uid: str) -> str:
        cur = cursor()
        for sql in statements(uid):
            try:
                cur.execute(sql.encode() if postgres else sql)
                if manifest.nodes[uid].resource_type == "test":
                    cur.fetchall()
            except Exception as err:
                raise BenchFailed(f"pure SQL of {uid} failed: {err}") from err
        return uid

    try:
        rounds = []
        for _ in range(2):  # the second round replaces what the first made, as an hourly run does
            waiting = {u: len(ps) for u, ps in parents.items()}
            children: dict[str, list[str]] = {u: [] for u in parents}
            for u, ps in parents.items():
                for p in ps:
                    children[p].append(u)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                running = {pool.submit(execute, u) for u, n in waiting.items() if n == 0}
                while running:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        uid = future.result()
                        for child in children[uid]:
                            waiting[child] -= 1
                            if waiting[child] == 0:
                                running.add(pool.submit(execute, child))
            rounds.append(time.perf_counter() - started)
    finally:
        close()
    kinds = [manifest.nodes[u].resource_type for u in parents]
    return {"seconds": rounds[-1], "rounds_seconds": [round(r, 3) for r in rounds], "threads": threads,
            "models": kinds.count("model"), "tests": kinds.count("test")}


# --------------------------------------------------------------------------- workers


class Workers:
    """N `celery -A portal worker --pool=solo` processes on one broker, started and stopped together."""

    def __init__(self, count: int, broker: str, env: dict[str, str], logs: Path):
        self.count, self.broker, self.env, self.logs = count, broker, env, logs
        self.procs: list[subprocess.Popen] = []
        self.files: list[Path] = []

    def __enter__(self) -> Workers:
        self.logs.mkdir(parents=True, exist_ok=True)
        celery = ROOT / ".venv" / "bin" / "celery"
        if not celery.exists():
            celery = Path(shutil.which("celery") or "celery")
        for i in range(self.count):
            log = self.logs / f"worker-{self.broker}-{self.count}-{i}.log"
            self.files.append(log)
            with log.open("w") as out:
                # DMAAS_BENCH_PROFILE=1: each worker under cProfile, written beside its log on exit
                profile = ([sys.executable, "-m", "cProfile", "-o", str(log.with_suffix(".prof")), "-m", "celery"]
                           if os.environ.get("DMAAS_BENCH_PROFILE") else [str(celery)])
                self.procs.append(subprocess.Popen(
                    [*profile, "-A", "portal", "worker", "--pool=solo", "-Q", QUEUES,
                     "--hostname", f"bench{i}-{self.broker}@%h", "--loglevel=INFO",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 90
        for proc, log in zip(self.procs, self.files, strict=True):
            while " ready." not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise BenchFailed(f"worker did not start (log {log}):\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        return self

    def check(self) -> None:
        for proc, log in zip(self.procs, self.files, strict=True):
            if proc.poll() is not None:
                raise BenchFailed(f"a worker exited ({proc.returncode}); log {log}:\n{log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # warm shutdown
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# --------------------------------------------------------------------------- one configuration


def sender(broker: str, redis_url: str, prefix: str, var_dir: Path) -> Any:
    """A Celery app of this process that sends to the workers' broker (as beat does)."""
    from celery import Celery

    from portal.broker import filesystem_transport_options, redis_transport_options

    app = Celery(f"dmaas-bench-{broker}", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    if broker == "redis":
        app.conf.update(broker_url=redis_url,
                        broker_transport_options={**redis_transport_options(7200), "global_keyprefix": prefix})
    else:
        app.conf.update(broker_url="filesystem://localhost//",
                        broker_transport_options=filesystem_transport_options(var_dir / "celery"))
    return app


def one_run(app: Any, schedule_id: int, slot: dt.datetime, workers: Workers, timeout: float) -> dict[str, Any]:
    """Fire the schedule's slot through the broker; wait for the run; its figures."""
    from django.db.models import Count, Q
    from django.utils import timezone

    from runner.models import RUN_FINISHED, NodeRun, Run

    sent = timezone.now()
    app.send_task("runner.tasks.fire_schedule", args=(schedule_id, slot.isoformat()))
    deadline = time.monotonic() + timeout
    while True:
        run = Run.objects.filter(schedule_id=schedule_id, slot=slot).first()
        if run is not None and run.status in RUN_FINISHED:
            break
        workers.check()
        if time.monotonic() > deadline:
            raise BenchFailed(f"the run of {slot} did not finish in {timeout:.0f} s")
        time.sleep(0.02)
    nodes = NodeRun.objects.filter(run=run)
    bad = list(nodes.exclude(status__in=("success", "pass")).values_list("name", "status", "message")[:5])
    if run.status != "success" or bad:
        raise BenchFailed(f"run {run.pk} ended {run.status}: {run.message}; for example {bad}")
    tasks = nodes.filter(gated_by="")
    rows = list(tasks.values_list("queued_at", "started_at", "finished_at", "seconds", "attempts"))
    counts = nodes.aggregate(total=Count("id"), tests=Count("id", filter=Q(resource_type="test")))
    in_task = [(f - s).total_seconds() - (sec or 0) for _, s, f, sec, _ in rows]
    queue = [(s - q).total_seconds() for q, s, _, _, _ in rows if q]
    return {
        "run_id": run.pk, "wall_seconds": (run.finished_at - sent).total_seconds(),
        "start_seconds": (run.started_at - sent).total_seconds(),  # beat's message to the run planning
        "nodes": counts["total"], "tests": counts["tests"], "tasks": len(rows),
        "retried_tasks": sum(1 for *_, a in rows if a > 1),
        "warehouse_seconds_sum": round(sum(sec or 0 for *_, sec, _ in rows), 3),
        "task_other_ms_mean": round(statistics.fmean(in_task) * 1000, 1),  # in a task, outside the SQL
        "queue_wait_ms_mean": round(statistics.fmean(queue) * 1000, 1) if queue else None,
        "workers_used": len(set(tasks.values_list("worker", flat=True))),
        # run by the task of a parent that made them ready, never queued apart (runner.runs continuation)
        "continued": sum(1 for q, s, *_ in rows if q and q == s),
    }


def bench_config(broker: str, n_workers: int, *, schedule_id: int, warmup_id: int, base_env: dict[str, str], args: Any,
                 prefix: str, var_dir: Path, logs: Path, next_slot: Callable[[], dt.datetime]) -> dict[str, Any]:
    env = dict(base_env)
    if args.no_measure:
        env["DMAAS_MEASURE_BUILDS"] = "0"  # the orchestration alone, without the data watch's measuring
    if broker == "redis":
        env["CELERY_BROKER_URL"] = args.redis_url
    else:
        env.pop("CELERY_BROKER_URL", None)  # the embedded default: the filesystem under DMAAS_VAR_DIR
    app = sender(broker, args.redis_url, prefix, var_dir)
    started = time.perf_counter()
    try:
        with Workers(n_workers, broker, env, logs) as workers:
            boot = time.perf_counter() - started
            # Warm-up: one staging model per worker, dispatched at once, so every worker takes one first
            # task and compiles the project for the commit; unless --cold: then the timed run is the first.
            warmup = None if args.cold else one_run(app, warmup_id, next_slot(), workers, args.timeout)
            timed = [one_run(app, schedule_id, next_slot(), workers, args.timeout) for _ in range(max(1, args.repeat))]
    finally:
        app.close()
    best = min(timed, key=lambda r: r["wall_seconds"])
    return {"broker": broker, "workers": n_workers, "boot_seconds": round(boot, 2), "warmup": warmup,
            "timed": timed, "best": best}


# --------------------------------------------------------------------------- main


def setup_django(env: dict[str, str], settings_dir: Path) -> None:
    os.environ.update(env)
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(settings_dir))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def environment() -> dict[str, Any]:
    import celery
    import duckdb
    import kombu

    return {"python": platform.python_version(), "celery": celery.__version__, "kombu": kombu.__version__,
            "duckdb": duckdb.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def print_table(results: list[dict[str, Any]], pure: dict[int, dict[str, Any]]) -> bool:
    print()
    print(f"{'broker':<11}{'workers':>8}{'nodes':>7}{'tasks':>7}{'run s':>9}{'pure SQL s':>12}"
          f"{'overhead ms/node':>18}{'ms/task':>9}  verdict")
    verdicts = []
    for r in results:
        b = r["best"]
        line = (f"{r['broker']:<11}{r['workers']:>8}{b['nodes']:>7}{b['tasks']:>7}{b['wall_seconds']:>9.2f}"
                f"{r['pure_seconds']:>12.2f}{r['overhead_ms_per_node']:>18.1f}{r['overhead_ms_per_task']:>9.1f}")
        if r["broker"] == "redis":
            ok = r["overhead_ms_per_node"] < TARGET_MS
            verdicts.append(ok)
            line += f"  {'PASS' if ok else 'FAIL'} (< {TARGET_MS:.0f} ms/node)"
        print(line)
    if verdicts:
        print(f"target: overhead < {TARGET_MS:.0f} ms per node over Redis -> {'PASS' if all(verdicts) else 'FAIL'}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs; the figures are inflated")
    return all(verdicts) if verdicts else True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=500, help="models in the generated project (default 500)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per source table (default 2000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker processes (default 1 2 4)")
    parser.add_argument("--brokers", default="redis,filesystem", help="comma list of redis, filesystem")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per configuration, best kept (default 1)")
    parser.add_argument("--concurrency", type=int, default=4, help="DMAAS_WAREHOUSE_CONCURRENCY (default 4)")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES,
                        help="PostgreSQL server for the portal's throwaway database (default: DMAAS_TEST_POSTGRES_URL)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="Redis database (default: DMAAS_TEST_REDIS_URL)")
    parser.add_argument("--warehouse-url", help="a PostgreSQL server: the warehouse on a throwaway database there "
                                                "(default: a DuckDB file)")
    parser.add_argument("--no-measure", action="store_true",
                        help="workers do not measure builds (runner/observe): the orchestration's own overhead")
    parser.add_argument("--hold-seconds", type=float,
                        help="DMAAS_WAREHOUSE_HOLD_SECONDS: how long a DuckDB worker keeps the file between its "
                             "nodes when another asks for it (default: the project's, 1)")
    parser.add_argument("--cold", action="store_true", help="no warm-up run: time each configuration's first run "
                                                          "(every worker compiles the project during it)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take (default 600)")
    parser.add_argument("--work", type=Path, help="keep the repository, warehouse and worker logs here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    if not brokers or set(brokers) - {"redis", "filesystem"}:
        parser.error("--brokers takes a comma list of redis, filesystem")

    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-run-"))
    work.mkdir(parents=True, exist_ok=True)
    var_dir = work / "var"
    prefix = f"dmaas-bench-run-{os.getpid()}-{secrets.token_hex(3)}:"
    drops: list[Callable[[], None]] = []
    status = 0
    started = time.perf_counter()
    try:
        portal_url, drop = throwaway_database(args.database_url, f"dmaas_bench_run_portal_{os.getpid()}")
        drops.append(drop)
        if args.warehouse_url:
            warehouse_url, drop = throwaway_database(args.warehouse_url, f"dmaas_bench_run_wh_{os.getpid()}")
            drops.append(drop)
        else:
            (work / "warehouse").mkdir(exist_ok=True)
            warehouse_url = f"duckdb:///{work / 'warehouse' / 'warehouse.duckdb'}"
        (work / "settings").mkdir(exist_ok=True)
        (work / "settings" / "bench_run_settings.py").write_text(SETTINGS_MODULE)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "DATABASE_URL")}
        env.update(DJANGO_SETTINGS_MODULE="bench_run_settings", DATABASE_URL=portal_url,
                   PYTHONPATH=os.pathsep.join([str(work / "settings"), str(ROOT)]),
                   DMAAS_REPO=str(work / "data-models.git"), DMAAS_REPO_REMOTE="", DMAAS_WAREHOUSE=warehouse_url,
                   DMAAS_VAR_DIR=str(var_dir), DMAAS_SECRET_KEY=secrets.token_urlsafe(64), DMAAS_DEBUG="0",
                   DMAAS_WAREHOUSE_CONCURRENCY=str(args.concurrency), DMAAS_BENCH_REDIS_PREFIX=prefix)
        if args.hold_seconds is not None:
            env["DMAAS_WAREHOUSE_HOLD_SECONDS"] = str(args.hold_seconds)
        print(f"dmaas run benchmark: {args.models} models, {args.rows} rows per source, workers {args.workers}, "
              f"brokers {brokers}, warehouse {'PostgreSQL' if args.warehouse_url else 'DuckDB'}, work dir {work}")
        setup_django(env, work / "settings")

        from models_service.git_store import MAIN_REF, Edit
        from models_service.repo import PORTAL, get_store
        from runner import runs
        from runner.models import Schedule

        t0 = time.perf_counter()
        files = project_files(args.models, args.seed, work, portable=bool(args.warehouse_url))
        store = get_store()
        sha = store.commit(MAIN_REF, lambda snap: Edit(files, f"{args.models} generated models"), author=PORTAL).sha
        create_sources(warehouse_url, args.rows, args.seed)
        manifest = runs.manifest_for(sha, SCHEMA)
        print(f"  project committed and compiled, sources created in {time.perf_counter() - t0:.1f} s")

        pure: dict[int, dict[str, Any]] = {}

        def pure_for(n_workers: int) -> dict[str, Any]:
            threads = 1 if not args.warehouse_url else max(1, min(n_workers, args.concurrency))
            if threads not in pure:
                pure[threads] = pure_sql(manifest, warehouse_url, threads)
                p = pure[threads]
                print(f"  pure SQL, {threads} thread(s): {p['seconds']:.2f} s ({p['models']} models, {p['tests']} tests;"
                      f" rounds {p['rounds_seconds']})")
            return pure[threads]

        for n in args.workers:
            pure_for(n)
        schedule = Schedule.objects.get()  # the hourly default, made by migrate: every model
        first_models = sorted(Path(p).stem for p in files if p.startswith("models/staging/") and p.endswith(".sql"))
        warmup = Schedule.objects.create(name="bench warm-up", cron="",
                                         select=" ".join(first_models[:max(args.workers)]))
        slots = iter(dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=h) for h in range(10_000))
        results = []
        for broker in brokers:
            for n in args.workers:
                print(f"  {broker}, {n} worker(s) ...", end="", flush=True)
                result = bench_config(broker, n, schedule_id=schedule.pk, warmup_id=warmup.pk, base_env=env, args=args, prefix=prefix,
                                      var_dir=var_dir, logs=work / "logs", next_slot=lambda: next(slots))
                p = pure_for(n)
                best = result["best"]
                result["pure_seconds"] = round(p["seconds"], 3)
                result["pure_threads"] = p["threads"]
                result["overhead_ms_per_node"] = round((best["wall_seconds"] - p["seconds"]) / best["nodes"] * 1000, 2)
                result["overhead_ms_per_task"] = round((best["wall_seconds"] - p["seconds"]) / best["tasks"] * 1000, 2)
                results.append(result)
                print(f" run {best['wall_seconds']:.2f} s, {result['overhead_ms_per_node']:.1f} ms/node")
        ok = print_table(results, pure)
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / "run.json"
        out.write_text(json.dumps({
            "target": {"overhead_ms_per_node": TARGET_MS, "broker": "redis", "pass": ok},
            "models": args.models, "rows_per_source": args.rows, "seed": args.seed,
            "warehouse": "postgresql" if args.warehouse_url else "duckdb", "portal_database": "postgresql",
            "warehouse_concurrency": args.concurrency, "hold_seconds": args.hold_seconds, "pure_sql": {str(k): v for k, v in pure.items()},
            "results": results, "environment": environment(),
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1)}, indent=2, default=str) + "\n")
        print(f"wrote {out} ({time.perf_counter() - started:.0f} s in all)")
    except BenchFailed as err:
        print(f"\nBENCHMARK FAILED: {err}", file=sys.stderr)
        status = 1
    finally:
        clean_up(args, prefix, drops, work, status)
    return status


def clean_up(args: Any, prefix: str, drops: list[Callable[[], None]], work: Path, status: int) -> None:
    """A benchmark's end, whatever happened: its Redis keys and throwaway databases go; its work dir
    too unless `--work` named it or the benchmark failed (then it is kept for inspection)."""
    forget_redis_keys(args.redis_url, prefix)
    for drop in reversed(drops):
        try:
            drop()
        except Exception as err:  # noqa: BLE001 - reported, the rest still cleaned
            print(f"warning: could not drop a throwaway database: {err}", file=sys.stderr)
    if args.work is None and status == 0:
        shutil.rmtree(work, ignore_errors=True)
    elif status:
        print(f"work dir kept for inspection: {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
