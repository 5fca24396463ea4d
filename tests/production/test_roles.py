"""The warehouse's preview login holds even when everything in front of it fails.

`manage.py dmaas_warehouse_roles --apply` makes the production and preview roles in throwaway
databases of the real PostgreSQL server; previews then run through `runner.warehouse` (the parser
guard of runner/preview.py bypassed: SQL goes straight to the warehouse's preview call), and also
on a bare connection of the preview login, as if the wrapper and the read-only transaction were gone
too. Writes, DDL, temporary tables and the portal's tables must all be refused, by the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest
from django.core.management import call_command
from django.test import override_settings
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runner import warehouse as wh

pytestmark = pytest.mark.postgres


def _url(base: str, **changes: str) -> str:
    params = conninfo_to_dict(base) | changes
    return make_conninfo(**params)


@dataclass
class Cluster:
    admin: str
    warehouse_db: str
    portal_db: str
    owner: str
    preview: str
    portal: str

    def url(self, user: str, database: str | None = None) -> str:
        """A postgresql:// URL, as settings hold them (the server here trusts local logins; the
        password still goes through the command's hashing)."""
        p = conninfo_to_dict(self.admin)
        host, port = p.get("host", "127.0.0.1"), p.get("port", "5432")
        return f"postgresql://{user}:pw-{user}@{host}:{port}/{database or self.warehouse_db}"


def _drop(admin: str, databases: list[str], roles: list[str]) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for db in databases:
            conn.execute(f'drop database if exists "{db}" with (force)')
        for role in roles:
            conn.execute(f'drop role if exists "{role}"')


def _make(postgres_url: str, same_database: bool) -> Cluster:
    tag = uuid.uuid4().hex[:8]
    c = Cluster(admin=postgres_url, warehouse_db=f"dmaas_roles_{tag}_wh",
                portal_db=f"dmaas_roles_{tag}_wh" if same_database else f"dmaas_roles_{tag}_portal",
                owner=f"dmaas_roles_{tag}_owner", preview=f"dmaas_roles_{tag}_preview", portal=f"dmaas_roles_{tag}_portal")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'create role "{c.portal}" login')
        conn.execute(f'create database "{c.warehouse_db}"')
        if not same_database:
            conn.execute(f'create database "{c.portal_db}" owner "{c.portal}"')
    # The portal's own tables: a users table with password hashes, as Django makes it.
    with psycopg.connect(_url(postgres_url, dbname=c.portal_db), autocommit=True) as conn:
        schema = "portal" if same_database else "public"
        if same_database:
            conn.execute(f'create schema portal authorization "{c.portal}"')
        else:
            conn.execute(f'grant create on schema public to "{c.portal}"')
        conn.execute(f'set role "{c.portal}"')
        conn.execute(f"create table {schema}.auth_user (id int primary key, username text, password text)")
        conn.execute(f"insert into {schema}.auth_user values (1, 'adam', 'pbkdf2_sha256$secret')")
    # A source schema loaded by someone else (the admin here), which models read through source().
    with psycopg.connect(_url(postgres_url, dbname=c.warehouse_db), autocommit=True) as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.orders as select g as id, g * 10 as amount from generate_series(1, 5) g")
    return c


def _apply(c: Cluster, *, same_database: bool) -> str:
    args = ["--apply", "--admin-url", c.admin, "--source-schema", "raw", "--portal-role", c.portal,
            "--portal-database", c.portal_db]
    if same_database:
        args += ["--portal-schema", "portal"]
    from io import StringIO

    out = StringIO()
    call_command("dmaas_warehouse_roles", *args, stdout=out)
    # Production builds as the owner: a model in production, one in an analyst's dev schema made later.
    with psycopg.connect(c.url(c.owner), autocommit=True) as conn:
        conn.execute("create table analytics.orders as select id, amount from raw.orders")
        conn.execute("create schema if not exists dev_ana")
        conn.execute("create view dev_ana.big_orders as select * from analytics.orders where amount > 20")
    return out.getvalue()


@pytest.fixture(scope="module", params=["separate portal database", "portal tables in the warehouse database"])
def cluster(request, postgres_url):
    """Made once per layout (databases cost a second each); the tests change nothing in it but what
    they put back."""
    same = request.param.startswith("portal tables")
    c = _make(postgres_url, same)
    overrides = override_settings(DMAAS_WAREHOUSE=c.url(c.owner), DMAAS_PREVIEW_WAREHOUSE=c.url(c.preview),
                                  DMAAS_PRODUCTION_SCHEMA="analytics", DMAAS_SCHEMA_PREFIX="",
                                  DMAAS_PREVIEW_TIMEOUT_MS=1000)
    overrides.enable()
    wh.forget_warehouses()
    try:
        output = _apply(c, same_database=same)
        assert "are set up" in output
        assert "pw-" not in output  # passwords are never printed
        yield c, same
    finally:
        overrides.disable()
        wh.forget_warehouses()
        _drop(postgres_url, sorted({c.warehouse_db, c.portal_db}), [c.owner, c.preview, c.portal])


def preview(sql: str, limit: int = 10, timeout_ms: int | None = None) -> wh.QueryResult:
    """Straight to the warehouse's preview: no parser guard, no SELECT-only check."""
    return wh.get_warehouse().preview(sql, limit, timeout_ms)


def test_previews_run_as_the_preview_role_and_read_production_dev_and_sources(cluster):
    c, _ = cluster
    assert preview("select current_user as u").rows == [[c.preview]]
    assert preview("select count(*) as n from analytics.orders").rows == [[5]]
    assert preview("select count(*) as n from dev_ana.big_orders").rows == [[3]]
    assert preview("select count(*) as n from raw.orders").rows == [[5]]


@pytest.mark.parametrize("sql", [
    "insert into analytics.orders values (99, 1) returning id",
    "with x as (delete from analytics.orders returning id) select * from x",
    "select 1) as a; insert into analytics.orders values (99, 1); select * from (select 1",
    "select 1) as a; create table analytics.evil (i int); select * from (select 1",
    "select lo_create(0)",
    "select lo_from_bytea(0, 'x')",
])
def test_writes_through_the_preview_path_are_refused_and_nothing_changes(cluster, sql):
    with pytest.raises(wh.PreviewError):
        preview(sql)
    assert preview("select count(*) as n from analytics.orders").rows == [[5]]
    assert preview("select count(*) as n from pg_tables where tablename = 'evil'").rows == [[0]]


@pytest.mark.parametrize("statement", [
    "insert into analytics.orders values (99, 1)",
    "update analytics.orders set amount = 0",
    "delete from analytics.orders",
    "truncate analytics.orders",
    "drop table analytics.orders",
    "alter table analytics.orders add column x int",
    "create table analytics.evil (i int)",
    "create table public.evil (i int)",
    "create temporary table evil (i int)",
    "create schema evil",
    "create view dev_ana.evil as select 1",
    "insert into raw.orders values (99, 1)",
    "comment on table analytics.orders is 'mine'",
    "select lo_create(0)",
    "select lo_from_bytea(0, 'x')",
])
def test_the_preview_login_itself_refuses_every_write_even_in_a_read_write_transaction(cluster, statement):
    """As if the parser guard, the wrapper and the read-only transaction were all bypassed."""
    c, _ = cluster
    with psycopg.connect(c.url(c.preview), autocommit=True) as conn:
        conn.execute("set default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute(statement)
    with psycopg.connect(c.url(c.owner)) as conn:
        assert conn.execute("select count(*), sum(amount) from analytics.orders").fetchone() == (5, 150)


def test_the_preview_role_starts_read_only_with_a_statement_timeout(cluster):
    c, _ = cluster
    with psycopg.connect(c.url(c.preview), autocommit=True) as conn:
        assert conn.execute("show default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("show statement_timeout").fetchone() == ("1s",)
        with pytest.raises(errors.QueryCanceled):
            conn.execute("select pg_sleep(5)")


def test_a_long_preview_is_cancelled_at_its_timeout(cluster):
    with pytest.raises(wh.PreviewError) as caught:
        preview("select pg_sleep(5) as s", timeout_ms=300)
    assert caught.value.code == "timeout"


def test_the_portal_tables_are_out_of_reach(cluster):
    c, same = cluster
    if same:
        # Same database: the portal's schema has no USAGE for the preview (or production) role.
        with pytest.raises(wh.PreviewError) as caught:
            preview("select password from portal.auth_user")
        assert "permission denied for schema portal" in caught.value.message
        for user in (c.preview, c.owner):
            with psycopg.connect(c.url(user), autocommit=True) as conn, pytest.raises(errors.InsufficientPrivilege):
                conn.execute("select password from portal.auth_user")
    else:
        # A database of its own: PostgreSQL has no cross-database queries, and CONNECT is revoked.
        with pytest.raises(wh.PreviewError):
            preview(f'select password from "{c.portal_db}".public.auth_user')
        for user in (c.preview, c.owner):
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(c.url(user, database=c.portal_db), connect_timeout=5).close()
    # The portal itself still gets in.
    with psycopg.connect(c.url(c.portal, database=c.portal_db)) as conn:
        schema = "portal" if same else "public"
        assert conn.execute(f"select username from {schema}.auth_user").fetchall() == [("adam",)]


def test_applying_again_changes_nothing_and_adopts_tables_built_by_another_login(cluster):
    """Re-running is safe, and a table an earlier setup built as the admin becomes production's."""
    c, same = cluster
    with psycopg.connect(_url(c.admin, dbname=c.warehouse_db), autocommit=True) as conn:
        conn.execute("create table analytics.legacy as select 1 as i")
    args = ["--apply", "--admin-url", c.admin, "--source-schema", "raw", "--portal-role", c.portal,
            "--portal-database", c.portal_db] + (["--portal-schema", "portal"] if same else [])
    call_command("dmaas_warehouse_roles", *args, stdout=__import__("io").StringIO())
    with psycopg.connect(c.url(c.owner)) as conn:
        owner = conn.execute("select tableowner from pg_tables where schemaname = 'analytics' "
                             "and tablename = 'legacy'").fetchone()
    assert owner == (c.owner,)
    assert preview("select i from analytics.legacy").rows == [[1]]


def test_the_printed_sql_names_no_password(settings):
    settings.DMAAS_WAREHOUSE = "postgresql://dmaas_wh:s3cret@db/warehouse"
    settings.DMAAS_PREVIEW_WAREHOUSE = "postgresql://dmaas_preview:s3cret2@db/warehouse"
    from io import StringIO

    out = StringIO()
    call_command("dmaas_warehouse_roles", "--portal-database", "dmaas", "--portal-role", "dmaas", stdout=out)
    text = out.getvalue()
    assert "s3cret" not in text
    assert 'ALTER ROLE "dmaas_preview" SET default_transaction_read_only = on;' in text
    assert 'REVOKE CONNECT, TEMPORARY ON DATABASE "dmaas" FROM PUBLIC;' in text
