"""B1/B2/B3 through the real API: every text of tests/security/corpus.py posted to /api/v1/preview,
on DuckDB and on the real PostgreSQL, is refused with a 400 whose message names what is refused;
nothing in the warehouse changes and no file appears. Then the parser is switched off and the
corpus's writes go straight to the preview session: the read-only session (a SELECT-only role on
PostgreSQL, a read-only transaction with external access off on DuckDB) refuses every one of them.

Unit-level cases elsewhere: tests/runner/test_preview.py (writes, server files, PG functions),
tests/validation (the editor's checks)."""

from __future__ import annotations

import os
import time
import uuid

import psycopg
import pytest

from runner import preview
from runner import warehouse as wh
from tests.runner.conftest import MAIN_FILES, commit_to_main, seed_production
from tests.security.corpus import attacks_for
from tests.security.figures import report

pytestmark = pytest.mark.django_db
FILES = ("/tmp/dmaas-stolen.csv", "/tmp/dmaas-pwned", "/tmp/dmaas-lo", "/tmp/dmaas-stolen.parquet",
         "/tmp/dmaas-evil.duckdb", "/tmp/dmaas-export")


def _state(w) -> tuple:
    if w.kind == "duckdb":
        tables = w.rows("select schema_name, count(*) from duckdb_schemas() s left join duckdb_tables() t "
                        "using (schema_name) group by 1 order by 1")
    else:
        tables = w.rows("select table_schema, count(*) from information_schema.tables "
                        "where table_schema not in ('pg_catalog', 'information_schema') group by 1 order by 1")
    return (w.rows("select count(*), sum(amount) from analytics.stg_orders")[0], tuple(map(tuple, tables)),
            w.rows("select 1 from analytics.stg_customers limit 1"))


def _prepare(w) -> None:
    for path in FILES:
        if os.path.isdir(path):
            os.rmdir(path)
        elif os.path.exists(path):
            os.remove(path)
    commit_to_main(MAIN_FILES)
    seed_production(w)
    w.run("create sequence analytics.seq")


def test_the_corpus_is_refused_through_the_preview_api(any_warehouse, admin_api):
    w = any_warehouse
    _prepare(w)
    before = _state(w)
    attacks = attacks_for(w.kind)
    wrong, slowest = [], 0.0
    for attack in attacks:
        started = time.monotonic()
        response = admin_api.post("/api/v1/preview", {"sql": attack.sql, "name": "sec_probe"}, format="json")
        slowest = max(slowest, time.monotonic() - started)
        body = response.json() if response["Content-Type"].startswith("application/json") else {}
        message = str(body.get("error", {}).get("message", "")).lower()
        if response.status_code != 400:
            wrong.append(f"{attack.id}: {response.status_code} {str(body)[:200]}")
        elif attack.names and not any(n in message for n in attack.names):
            wrong.append(f"{attack.id}: 400 but the message names none of {attack.names}: {message[:200]}")
    after = _state(w)
    leaked = [p for p in FILES if os.path.exists(p)]
    rejected = len(attacks) - len(wrong)
    by_case = {c: sum(1 for a in attacks if a.case == c) for c in ("B1", "B2", "B3")}
    report("B1" if w.kind == "duckdb" else "B1-pg",
           f"{rejected}/{len(attacks)} rejected on {w.kind} (B1 {by_case['B1']}, B2 {by_case['B2']}, "
           f"B3 {by_case['B3']} texts; 400 naming the statement or function), slowest {slowest * 1000:.0f} ms, "
           f"warehouse unchanged: {before == after}, files written: {len(leaked)}",
           warehouse=w.kind, rejected=rejected, total=len(attacks), wrong=wrong)
    assert not wrong, "\n" + "\n".join(wrong)
    assert before == after
    assert not leaked


@pytest.fixture
def select_only_role(postgres_warehouse, settings):
    """A login role that may only SELECT on analytics, read-only by default (as
    `manage.py dmaas_warehouse_roles` sets up): DMAAS_PREVIEW_WAREHOUSE points at it."""
    role = f"dmaas_sec_ro_{uuid.uuid4().hex[:8]}"
    db = postgres_warehouse.url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_warehouse.url, autocommit=True) as conn:
        conn.execute(f'create role "{role}" login nosuperuser nocreatedb nocreaterole')
        conn.execute(f'alter role "{role}" set default_transaction_read_only = on')
        conn.execute(f'revoke all on database "{db}" from public')
        conn.execute(f'grant connect on database "{db}" to "{role}"')
        conn.execute("revoke create on schema public from public")
    base = postgres_warehouse.url.split("://", 1)[1].split("@", 1)[1]
    settings.DMAAS_PREVIEW_WAREHOUSE = f"postgresql://{role}@{base}"
    yield role
    with psycopg.connect(postgres_warehouse.url, autocommit=True) as conn:
        conn.execute(f'drop owned by "{role}" cascade')
    wh.forget_warehouses()
    with psycopg.connect(postgres_warehouse.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'drop database if exists "{db}" with (force)')
        conn.execute(f'drop role if exists "{role}"')


def _grant_select(w, role: str) -> None:
    w.run(f'grant usage on schema analytics to "{role}"', f'grant select on all tables in schema analytics to "{role}"')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def raw_warehouse(request, tmp_path, settings):
    wh.forget_warehouses()
    if request.param == "duckdb":
        from tests.runner.conftest import duckdb_warehouse

        yield duckdb_warehouse(tmp_path, settings), None
    else:
        w = request.getfixturevalue("postgres_warehouse")
        yield w, request.getfixturevalue("select_only_role")
    wh.forget_warehouses()


def test_with_the_parser_off_the_read_only_session_refuses_every_write(raw_warehouse, admin_api, monkeypatch):
    w, role = raw_warehouse
    _prepare(w)
    if role:
        _grant_select(w, role)
    before = _state(w)
    monkeypatch.setattr(preview, "check_model_sql", lambda compiled, dialect: None)
    monkeypatch.setattr(wh, "wrap_preview", lambda sql, limit: sql)  # the statement as it is, no wrapper
    writes = [a for a in attacks_for(w.kind) if a.writes and "jinja" not in a.id]
    got_through = []
    for attack in writes:
        response = admin_api.post("/api/v1/preview", {"sql": attack.sql, "name": "sec_probe"}, format="json")
        if response.status_code not in (400,) or _state(w) != before:
            got_through.append(f"{attack.id}: {response.status_code} {response.content[:200]!r}")
            w.run("create schema if not exists analytics")
    leaked = [p for p in FILES if os.path.exists(p)]
    report("B1-raw" if w.kind == "duckdb" else "B1-raw-pg",
           f"parser off: {len(writes) - len(got_through)}/{len(writes)} writes refused by the read-only session "
           f"on {w.kind}{' (SELECT-only role)' if role else ''}, files written: {len(leaked)}",
           warehouse=w.kind, wrong=got_through)
    assert not got_through, "\n" + "\n".join(got_through)
    assert not leaked
