"""Validation as the analyst types (issue 5, item 2): server time per check on a 2,000-model project.

A bare repository is generated with plumbing in one commit (layered models that ref one to three
earlier models, with CTEs, joins, `case`, `{{ config() }}`, `{% if var() %}`, some `select *` chains,
sources with documented columns, a yml with columns for a third of the models) and indexed. Then an
analyst edits randomly chosen models on a change request: for each model, a new column is typed into
its final select list and validated at evenly spaced keystrokes (so some states are syntax errors,
some unknown columns, the last one clean), through `runner.validation.validate_model`, the function
the API view calls, on a throwaway SQLite database.

It prints p50 / p95 / max over all checks, the same for the first keystroke on each model (its
parents and children are not cached yet), the one-off cost of the first check (the index of main
read into memory, the project's Jinja environment built), and PASS/FAIL against p95 < 50 ms.
Not a unit test; exit 0 unless something breaks.

    .venv/bin/python bench/validate.py
    .venv/bin/python bench/validate.py --models 2000 --edited 20 --keystrokes 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 50.0
COLUMNS = ("id", "customer_id", "amount", "status", "created_at")

SOURCES_YML = """version: 2
sources:
  - name: raw
    schema: raw
    tables:
      - name: orders
        columns: [{name: id, data_type: integer}, {name: customer_id}, {name: amount}, {name: status},
                  {name: created_at}]
      - name: payments
        columns: [{name: id}, {name: customer_id}, {name: amount}, {name: status}, {name: created_at}]
"""


def setup_django(work: Path) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(DMAAS_DEBUG="1", DMAAS_VAR_DIR=str(work / "var"), DJANGO_SETTINGS_MODULE="portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def model_sql(i: int, parents: list[str], rng: random.Random) -> str:
    """A model that outputs COLUMNS plus one of its own, reading 1-3 parents that all have COLUMNS."""
    if not parents:
        src = "orders" if i % 2 else "payments"
        return (f"{{{{ config(materialized='view') }}}}\nselect id, customer_id, amount, status, created_at\n"
                f"from {{{{ source('raw', '{src}') }}}}\nwhere status is not null\n")
    if i % 7 == 0:
        return f"select *, amount * 2 as doubled_{i}\nfrom {{{{ ref('{parents[0]}') }}}}\n"
    joins = "".join(f"    left join {{{{ ref('{p}') }}}} p{k} on p{k}.id = p0.id\n" for k, p in enumerate(parents[1:], 1))
    threshold = rng.randrange(10, 1000)
    return (
        f"{{{{ config(\n    materialized='table',\n    tags=['bench'],\n) }}}}\n"
        f"with base as (\n    select p0.id, p0.customer_id, p0.amount, p0.status, p0.created_at\n"
        f"    from {{{{ ref('{parents[0]}') }}}} p0\n{joins}),\n"
        f"agg as (\n    select customer_id, sum(amount) as total_amount, count(*) as n\n    from base\n"
        f"    group by customer_id\n)\n"
        f"select b.id, b.customer_id, b.amount, b.status, b.created_at,\n"
        f"    case when a.total_amount > {threshold} then 'high' else 'low' end as segment_{i}\n"
        f"from base b\njoin agg a on a.customer_id = b.customer_id\n"
        f"{{% if var('bench_only_open', false) %}}where b.status = 'open'{{% endif %}}\n"
    )


def generate(path: Path, n: int, seed: int) -> tuple[float, dict[str, str]]:
    from django.conf import settings

    from models_service.git_store import MAIN_REF, Edit
    from models_service.project_files import ColumnSpec, ModelSpec, dump_properties
    from models_service.repo import PORTAL, forget_stores, get_store

    settings.DMAAS_REPO = str(path)
    forget_stores()
    store = get_store()
    rng = random.Random(seed)
    started = time.perf_counter()
    files: dict[str, bytes] = {"models/sources.yml": SOURCES_YML.encode()}
    sqls: dict[str, str] = {}
    names: list[str] = []
    for i in range(n):
        name = f"model_{i:05d}"
        layer = "staging" if i < max(1, n // 10) else "marts" if i > n * 0.7 else "intermediate"
        parents: list[str] = []
        if layer != "staging":
            count = rng.choice((1, 1, 2, 3))
            recent = names[-30:]
            parents = sorted({rng.choice(recent if k % 2 == 0 else names) for k in range(count)})
        sql = model_sql(i, parents, rng)
        sqls[name] = sql
        files[f"models/{layer}/{name}.sql"] = sql.encode()
        if i % 3 == 0:
            extra = f"doubled_{i}" if i % 7 == 0 and parents else f"segment_{i}" if parents else None
            cols = [ColumnSpec(c) for c in COLUMNS] + ([ColumnSpec(extra)] if extra else [])
            files[f"models/{layer}/{name}.yml"] = dump_properties([ModelSpec(name, f"Model {i}", columns=cols)]).encode()
        names.append(name)
    store.commit(MAIN_REF, lambda snap: Edit(files, f"Generate {n} models"), author=PORTAL)
    return time.perf_counter() - started, sqls


def keystrokes(sql: str, count: int) -> list[str]:
    """The model's text while a new column is typed at the end of its final select list."""
    typed = ", amount * 2 as amount_twice"
    marker = "\nfrom " if "\nfrom base b" not in sql else "\nfrom base b"
    at = sql.rindex(marker)
    if "segment_" in sql[:at]:
        typed = ", b.amount * 2 as amount_twice"
    steps = sorted({max(1, round(len(typed) * (k + 1) / count)) for k in range(count)})
    return [sql[:at] + typed[:s] + sql[at:] for s in steps]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
            "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1), "checks": len(ms)}


def run(work: Path, n: int, edited: int, count: int, seed: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from models_service import changes, index
    from models_service.access import Role
    from models_service.repo import get_store
    from runner.validation import validate_model

    generate_s, sqls = generate(work / f"repo-{n}.git", n, seed)
    store = get_store()
    started = time.perf_counter()
    index.rebuild(store)
    reindex_s = time.perf_counter() - started
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    user.groups.add(Group.objects.get_or_create(name=Role.ANALYST.value)[0])
    change = changes.open_change(user, "Benchmark edits")

    rng = random.Random(seed + 1)
    chosen = rng.sample(sorted(sqls), edited)
    started = time.perf_counter()
    first = validate_model(user, sql=sqls[chosen[0]], name=chosen[0], change=change)
    first_ms = (time.perf_counter() - started) * 1000

    all_ms: list[float] = []
    cold_ms: list[float] = []
    codes: dict[str, int] = {}
    for name in chosen:
        for k, text in enumerate(keystrokes(sqls[name], count)):
            started = time.perf_counter()
            result = validate_model(user, sql=text, name=name, change=change)
            ms = (time.perf_counter() - started) * 1000
            all_ms.append(ms)
            if k == 0:
                cold_ms.append(ms)
            for d in result["diagnostics"]:
                codes[d["code"]] = codes.get(d["code"], 0) + 1
        if not result["columns"] or any(d["severity"] == "error" for d in result["diagnostics"]):
            raise SystemExit(f"the finished edit of {name} should be clean: {json.dumps(result)[:600]}")
    return {"models": n, "edited_models": edited, "keystrokes_per_model": count,
            "generate_seconds": round(generate_s, 2), "reindex_seconds": round(reindex_s, 2),
            "first_check_ms": round(first_ms, 1), "first_check_diagnostics": len(first["diagnostics"]),
            "all": figures(all_ms), "first_keystroke": figures(cold_ms), "diagnostic_codes": codes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--edited", type=int, default=20, help="models edited")
    parser.add_argument("--keystrokes", type=int, default=10, help="checks per edited model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help="keep the repository and the database here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dmaas-bench-validate-"))
    work.mkdir(parents=True, exist_ok=True)
    setup_django(work)
    try:
        result = run(work, args.models, args.edited, args.keystrokes, args.seed)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    a, c = result["all"], result["first_keystroke"]
    print(f"{result['models']} models (generated in {result['generate_seconds']} s, indexed in "
          f"{result['reindex_seconds']} s); {result['edited_models']} models edited, "
          f"{result['keystrokes_per_model']} checks each")
    print(f"first check after start (index read, Jinja environment built): {result['first_check_ms']} ms")
    print(f"{'':>16} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'checks':>7}")
    print(f"{'all checks':>16} {a['p50_ms']:>8} {a['p95_ms']:>8} {a['max_ms']:>8} {a['checks']:>7}")
    print(f"{'first keystroke':>16} {c['p50_ms']:>8} {c['p95_ms']:>8} {c['max_ms']:>8} {c['checks']:>7}")
    print(f"diagnostics seen: {result['diagnostic_codes']}")
    ok = a["p95_ms"] < TARGET_MS
    print(f"target: p95 < {TARGET_MS:.0f} ms server time -> {'PASS' if ok else 'FAIL'} ({a['p95_ms']} ms)")
    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load[0]:.1f} on {os.cpu_count()} CPUs; the figures are inflated")
    args.out.mkdir(parents=True, exist_ok=True)
    result["target"] = {"p95_ms": TARGET_MS, "pass": ok}
    (args.out / "validate.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out / 'validate.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
