"""Catalog search latency at 2,000 indexed nodes (issue 9, item 4: p95 < 100 ms).

Writes 2,000 nodes straight into the index of a throwaway database (1,700 models, 200 seeds, 100
sources; ~12 columns each with descriptions, tags and owners: ~24,000 column rows), then times 200
searches of varied kinds (exact names, name prefixes, words inside names, tags, owners, column names,
description words, several words, filters) twice:

* service: `models_service.index.search` as the page and the API call it (ranking included);
* api:     `GET /api/v1/search?q=` through Django's test client (authentication, serialization).

Before the timed searches it times the first one, which reads main's rows and builds the search index
(models_service/catalog_index.py; a web process does this once per version of main), then the index's
build alone and the memory it holds (tracemalloc, over a second build).

It prints p50 / p95 / max per database and PASS/FAIL against p95 < 100 ms, on SQLite (the embedded
default) and on PostgreSQL when one is reachable (`--database-url`, default DMAAS_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres; a throwaway database is made and dropped there), and
writes bench/out/catalog.json. A report, not a test: exit 0 unless something fails.

    .venv/bin/python bench/catalog.py
    .venv/bin/python bench/catalog.py --nodes 5000 --queries 500 --no-postgres
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 100.0
DEFAULT_PG = os.environ.get("DMAAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

ENTITIES = ["orders", "customers", "products", "events", "payments", "refunds", "sessions", "invoices", "shipments",
            "subscriptions", "accounts", "campaigns", "leads", "tickets", "inventory", "suppliers", "stores",
            "employees", "returns", "carts"]
METRICS = ["daily", "monthly", "revenue", "retention", "funnel", "cohort", "summary", "enriched", "deduped",
           "scored", "rolling", "ranked", "pivot", "snapshot", "latest"]
COLUMNS = ["id", "customer_id", "order_id", "product_id", "amount", "amount_eur", "revenue_eur", "created_at",
           "updated_at", "status", "email", "country_code", "segment", "quantity", "discount", "channel",
           "session_id", "event_type", "is_active", "score", "rank", "day", "month", "currency", "margin"]
TAGS = ["finance", "marketing", "product", "ops", "pii", "core", "experimental", "daily", "hourly", "gdpr"]
OWNERS = ["finance-team", "growth", "data-platform", "ana", "bob", "crm-team", "ops-analytics", "web-team"]
WORDS = ["gross", "net", "booked", "churned", "active", "weekly", "regional", "forecast", "attributed", "settled"]


def setup_django(work: Path, database_url: str | None) -> None:
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(DMAAS_DEBUG="1", DMAAS_VAR_DIR=str(work / "var"), DJANGO_SETTINGS_MODULE="portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill_index(n: int, rng: random.Random) -> list[str]:
    """n nodes on main with columns and tags, in bulk; their names."""
    from django.db import transaction

    from models_service.models import IndexedColumn, IndexedNode, IndexedTag

    n_sources, n_seeds = n // 20, n // 10
    specs = []
    for i in range(n_sources):
        specs.append(("source", f"raw_{rng.choice(ENTITIES)}.{rng.choice(ENTITIES)}_{i:04d}"))
    for i in range(n_seeds):
        specs.append(("seed", f"seed_{rng.choice(ENTITIES)}_{i:04d}"))
    layers = ["stg", "int", "mart", "fct", "dim"]
    for i in range(n - n_sources - n_seeds):
        specs.append(("model", f"{rng.choice(layers)}_{rng.choice(ENTITIES)}_{rng.choice(METRICS)}_{i:04d}"))
    with transaction.atomic():
        nodes = IndexedNode.objects.bulk_create([
            IndexedNode(ref="main", kind=kind, name=name, path=f"models/{name}.sql",
                        description=f"{rng.choice(WORDS).capitalize()} {name.split('_')[1]} "
                                    f"{rng.choice(METRICS)} for the {rng.choice(WORDS)} report, "
                                    f"refreshed {rng.choice(['hourly', 'daily'])}. " * rng.randint(1, 3),
                        owner=rng.choice(OWNERS), materialized=rng.choice(["view", "table", "incremental"]),
                        depends_on=[], commit_sha="0" * 40)
            for kind, name in specs], batch_size=500)
        columns, tags = [], []
        for node in nodes:
            for pos, col in enumerate(rng.sample(COLUMNS, rng.randint(8, 16))):
                columns.append(IndexedColumn(node=node, name=col, position=pos, data_type="varchar",
                                             description=f"The {col.replace('_', ' ')} of the {rng.choice(WORDS)} row"))
            tags += [IndexedTag(node=node, tag=t) for t in rng.sample(TAGS, rng.randint(0, 3))]
        IndexedColumn.objects.bulk_create(columns, batch_size=2000)
        IndexedTag.objects.bulk_create(tags, batch_size=2000)
    return [name for _, name in specs]


def queries(names: list[str], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind of query, query) in a fixed mix."""
    mix = [
        ("exact name", lambda: rng.choice(names), 0.2),
        ("name prefix", lambda: rng.choice(names)[:rng.randint(4, 9)], 0.2),
        ("word in names", lambda: rng.choice(ENTITIES + METRICS), 0.15),
        ("tag", lambda: rng.choice(TAGS), 0.1),
        ("owner", lambda: rng.choice(OWNERS), 0.1),
        ("column", lambda: rng.choice(COLUMNS), 0.1),
        ("description word", lambda: rng.choice(WORDS), 0.05),
        ("several words", lambda: f"{rng.choice(ENTITIES)} {rng.choice(METRICS)}", 0.05),
        ("filters", lambda: f"tag:{rng.choice(TAGS)} {rng.choice(ENTITIES)}", 0.05),
    ]
    out = []
    for kind, make, share in mix:
        out += [(kind, make()) for _ in range(round(count * share))]
    rng.shuffle(out)
    return out[:count]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
            "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1), "queries": len(ms)}


def index_cost(entries: list) -> dict[str, float]:
    """The search index of `entries` alone: its build time, and the memory it holds."""
    from models_service.catalog_index import CatalogIndex

    started = time.perf_counter()
    CatalogIndex(entries)
    build_ms = (time.perf_counter() - started) * 1000
    gc.collect()
    tracemalloc.start()
    held = CatalogIndex(entries)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    return {"index_build_ms": round(build_ms), "index_mib": round(size / 2**20, 1)}


def run(n: int, count: int, seed: int) -> dict:
    """In this process's database (set up already): fill, warm up, time."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from models_service import index
    from tests.personas import make_user

    rng = random.Random(seed)
    started = time.perf_counter()
    names = fill_index(n, rng)
    fill_seconds = time.perf_counter() - started
    user = make_user("bench_analyst", "analyst")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(user)
    mix = queries(names, count, rng)
    index.search(user, "warm")  # the user's roles
    started = time.perf_counter()
    index._snapshot = None  # as after main moves: read main's rows, build the index
    index.search(user, mix[0][1])
    first = {"first_search_ms": round((time.perf_counter() - started) * 1000), **index_cost(index._catalog().entries)}
    for _, q in mix[:10]:  # warm caches (roles, prepared statements, the OS's pages)
        index.search(user, q)
    service, api, by_kind = [], [], {}
    for kind, q in mix:
        t = time.perf_counter()
        hits = index.search(user, q, limit=50)
        ms = (time.perf_counter() - t) * 1000
        service.append(ms)
        by_kind.setdefault(kind, []).append(ms)
        t = time.perf_counter()
        response = client.get("/api/v1/search", {"q": q})
        api.append((time.perf_counter() - t) * 1000)
        if response.status_code != 200 or response.json()["count"] != len(hits):
            raise SystemExit(f"search for {q!r} answered {response.status_code}: {response.content[:300]!r}")
    return {"database": connection.vendor, "nodes": n, "fill_seconds": round(fill_seconds, 1), **first,
            "service": figures(service), "api": figures(api),
            "by_kind_p95_ms": {k: round(percentile(v, 95), 1) for k, v in sorted(by_kind.items())}}


def throwaway_database(url: str) -> tuple[str, object]:
    import psycopg

    name = f"dmaas_bench_catalog_{os.getpid()}"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return url.rsplit("/", 1)[0] + "/" + name, drop


def reachable(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def show(result: dict) -> None:
    for part in ("service", "api"):
        f = result[part]
        verdict = "PASS" if f["p95_ms"] < TARGET_MS else "FAIL"
        print(f"{result['database']:>10} {part:<8} {result['nodes']} nodes, {f['queries']} queries: "
              f"p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, max {f['max_ms']} ms  {verdict} (p95 < {TARGET_MS:g} ms)")
    print(" " * 11 + "p95 by kind: " + ", ".join(f"{k} {v}" for k, v in result["by_kind_p95_ms"].items()))
    print(" " * 11 + f"load average {result['load']} (1 min, start -> end): compare figures taken at the same load")
    print(" " * 11 + f"first search after main moves {result['first_search_ms']} ms, of which the index's build "
          f"{result['index_build_ms']} ms; the index holds {result['index_mib']} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL server to also measure on")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()

    if args.child:  # one database per process: Django is set up once
        with tempfile.TemporaryDirectory(prefix="dmaas-bench-catalog-") as tmp:
            setup_django(Path(tmp), args.database_url if args.child == "postgres" else None)
            print(json.dumps(run(args.nodes, args.queries, args.seed)))
        return 0

    results = []
    targets = [("sqlite", None)]
    if not args.no_postgres:
        if reachable(args.database_url):
            targets.append(("postgres", args.database_url))
        else:
            print(f"PostgreSQL at {args.database_url} is unreachable: SQLite only.")
    for kind, url in targets:
        drop = None
        if url:
            url, drop = throwaway_database(url)
        try:
            started_load = os.getloadavg()[0]
            command = [sys.executable, __file__, "--child", kind, "--nodes", str(args.nodes), "--queries",
                       str(args.queries), "--seed", str(args.seed)] + (["--database-url", url] if url else [])
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:])
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            load = f"{started_load:.2f} -> {os.getloadavg()[0]:.2f}"
        finally:
            if drop:
                drop()
        result["load"] = load
        show(result)
        results.append(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "catalog.json").write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                                                  "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
