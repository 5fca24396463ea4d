"""What every warehouse offers the executor: statements on a per-thread connection, the catalog,
and the atomic building blocks (a table built beside the live one and swapped in one transaction)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ..compiler import quote


def rel(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def temp_name(name: str, kind: str = "tmp") -> str:
    """A unique name beside `name` (<= 63 chars): concurrent runs never clash on temporary relations."""
    return f"{name[:40]}__dmaas_{kind}_{secrets.token_hex(4)}"


class Adapter:
    type = "base"
    dialect = "duckdb"
    drop_cascade = ""
    param = "?"  # the driver's parameter marker
    # Whether relation_type may answer from a catalog read once per run. Not where a drop cascades
    # to dependent views (PostgreSQL): then the warehouse changes behind the cache's back.
    cache_catalog = True

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        # (schema, name) -> "table" | "view" | None (absent), read once per run instead of per node;
        # one run per target at a time keeps it true while the run goes on.
        self._catalog: dict[tuple[str, str], str | None] | None = None

    # --------------------------------------------------------------- connections
    def _connect(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        self._catalog = None
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._all.clear()
        self._local = threading.local()

    def interrupt(self) -> None:
        """Cancel whatever this adapter's connections are running (from another thread: a time limit).
        The interrupted statement fails, its transaction rolls back, and the old relation keeps serving."""
        with self._lock:
            conns = list(self._all)
        for conn in conns:
            try:
                self._interrupt(conn)
            except Exception:  # noqa: BLE001 - a connection that is gone runs nothing
                pass

    def _interrupt(self, conn: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        raise NotImplementedError

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction on this thread's connection. Nested uses join the outermost one, so a
        gated deploy (execution.py) can hold a model's build and its tests in a single transaction."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        self.execute("begin")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            self._local.depth = 0
            with suppress(Exception):  # a cut connection cannot roll back (its server does): tell the cause
                self.execute("rollback")
            raise
        self._local.depth = 0
        self.execute("commit")

    def forget(self, schema: str, name: str) -> None:
        """Drop a relation from the catalog cache (after a rollback: the cache may name what is gone)."""
        if self._catalog is not None:
            self._catalog[(schema, name)] = self._query_relation_type(schema, name)

    # --------------------------------------------------------------- catalog
    def relations(self, schemas: Sequence[str] | None = None) -> dict[tuple[str, str], str]:
        sql = (
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog')"
        )
        out = {}
        for schema, name, kind in self.fetchall(sql):
            if schemas is None or schema in schemas:
                out[(schema, name)] = "view" if "VIEW" in kind.upper() else "table"
        return out

    def prime_catalog(self) -> dict[tuple[str, str], str | None]:
        """Read the catalog once; relation_type answers from it until the adapter is closed."""
        if self._catalog is not None:
            return dict(self._catalog)
        relations: dict[tuple[str, str], str | None] = dict(self.relations())
        if self.cache_catalog:
            self._catalog = dict(relations)
        return relations

    def schema_known(self, schema: str, name: str | None = None) -> bool:
        """The catalog read for this run holds a relation in `schema` (`name` first: in an hourly run
        the node's own relation is there, one look-up instead of a scan), so the schema exists as far
        as the catalog is kept true (see forget_schema). False when there is no catalog to ask."""
        catalog = self._catalog
        if catalog is None:
            return False
        if name is not None and catalog.get((schema, name)):
            return True
        return any(kind and s == schema for (s, _), kind in list(catalog.items()))

    def forget_schema(self, schema: str) -> None:
        """Drop what the catalog knows of `schema` (dropped, or found missing)."""
        if self._catalog is not None:
            for key in [k for k in self._catalog if k[0] == schema]:
                self._catalog[key] = None

    def drop_schema(self, schema: str) -> None:
        """Drop a schema and all in it (a change's CI schema), and forget its relations."""
        self.execute(f"drop schema if exists {quote(schema)} cascade")
        self.forget_schema(schema)

    def _remember(self, schema: str, name: str, kind: str | None) -> None:
        if self._catalog is not None:
            self._catalog[(schema, name)] = kind

    def relation_type(self, schema: str, name: str) -> str | None:
        if self._catalog is not None:
            return self._catalog.get((schema, name))
        return self._query_relation_type(schema, name)

    def _query_relation_type(self, schema: str, name: str) -> str | None:
        ph = self.param
        rows = self.fetchall(
            f"select table_type from information_schema.tables where table_schema = {ph} and table_name = {ph}",
            (schema, name),
        )
        if not rows:
            return None
        return "view" if "VIEW" in rows[0][0].upper() else "table"

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        ph = self.param
        return [
            (r[0], r[1]) for r in self.fetchall(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = {ph} and table_name = {ph} order by ordinal_position",
                (schema, name),
            )
        ]

    def create_schema(self, schema: str) -> None:
        """Create the schema unless it exists. Two processes creating it at the same moment make one of
        them fail (PostgreSQL: a unique violation; DuckDB: a catalog conflict): look again, a few times."""
        delay = 0.02
        for attempt in range(7):
            try:
                self.execute(f"create schema if not exists {quote(schema)}")
                return
            except Exception:
                try:
                    self.execute("rollback")
                except Exception:  # noqa: BLE001 - no transaction was open
                    pass
                exists = self.fetchall(f"select 1 from information_schema.schemata where schema_name = {self.param}",
                                       (schema,))
                if exists:
                    return
                if attempt == 6:
                    raise
                time.sleep(delay)
                delay *= 2

    # --------------------------------------------------------------- building blocks
    def _drop(self, schema: str, name: str, kind: str) -> None:
        self.execute(f"drop {kind} if exists {rel(schema, name)}{self.drop_cascade}")

    def swap_in(self, schema: str, name: str, tmp: str, kind: str) -> None:
        """Replace `schema.name` by `schema.tmp` in one transaction: readers see old or new, never neither."""
        existing = self.relation_type(schema, name)
        backup = temp_name(name, "old")
        with self.transaction():
            if existing is not None:
                self.execute(f"alter {'view' if existing == 'view' else 'table'} {rel(schema, name)} "
                             f"rename to {quote(backup)}")
            self.execute(f"alter {'view' if kind == 'view' else 'table'} {rel(schema, tmp)} rename to {quote(name)}")
            if existing is not None:
                self._drop(schema, backup, existing)
        self._remember(schema, name, kind)

    @contextmanager
    def _dropped_after(self, schema: str, tmp: str, kind: str) -> Iterator[None]:
        """Drop the temporary relation once the block ends. When the block failed, its error is the one
        to tell: a drop that fails too (the connection was cut) must not replace it."""
        try:
            yield
        except BaseException:
            with suppress(Exception):
                self._drop(schema, tmp, kind)
            raise
        self._drop(schema, tmp, kind)

    def build_table(self, schema: str, name: str, sql: str) -> int | None:
        # One transaction from the build to the swap: a client that dies mid-query (a killed worker)
        # leaves nothing behind, not even the temporary table the server would otherwise commit.
        tmp = temp_name(name)
        with self._dropped_after(schema, tmp, "table"), self.transaction():
            rows = self._create_table_as(schema, tmp, sql)
            self.swap_in(schema, name, tmp, "table")
        return rows

    def build_view(self, schema: str, name: str, sql: str) -> None:
        tmp = temp_name(name)
        with self._dropped_after(schema, tmp, "view"):
            self.execute(f"create view {rel(schema, tmp)} as (\n{sql}\n)")
            self.swap_in(schema, name, tmp, "view")

    def _create_table_as(self, schema: str, name: str, sql: str) -> int | None:
        raise NotImplementedError

    def build_incremental(self, schema: str, name: str, sql: str, unique_key: Any) -> int | None:
        """Append the new rows; with `unique_key`, replace the rows whose key comes again (delete+insert)."""
        tmp = temp_name(name)
        # One transaction from the new rows' table to the insert: when the connection is cut mid-way,
        # the server rolls the temporary table back too (autocommitted, it stayed behind).
        with self._dropped_after(schema, tmp, "table"), self.transaction():
            self._create_table_as(schema, tmp, sql)
            target_cols = [c for c, _ in self.columns(schema, name)]
            new_cols = {c for c, _ in self.columns(schema, tmp)}
            cols = ", ".join(quote(c) for c in target_cols if c in new_cols)
            if unique_key:
                keys = [unique_key] if isinstance(unique_key, str) else list(unique_key)
                if len(keys) == 1:
                    self.execute(
                        f"delete from {rel(schema, name)} where ({keys[0]}) in "
                        f"(select ({keys[0]}) from {rel(schema, tmp)})"
                    )
                else:
                    cond = " and ".join(f"{rel(schema, name)}.{k} = dbt_new.{k}" for k in keys)
                    self.execute(
                        f"delete from {rel(schema, name)} where exists "
                        f"(select 1 from {rel(schema, tmp)} dbt_new where {cond})"
                    )
            rows = self._rowcount(f"insert into {rel(schema, name)} ({cols}) select {cols} from {rel(schema, tmp)}")
        return rows

    def _rowcount(self, sql: str) -> int | None:
        raise NotImplementedError

    def load_seed(self, schema: str, name: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> int:
        tmp = temp_name(name)
        with self._dropped_after(schema, tmp, "table"):
            cols = ", ".join(f"{quote(c)} {t}" for c, t in columns)
            self.execute(f"create table {rel(schema, tmp)} ({cols})")
            if rows:
                self._insert_rows(schema, tmp, len(columns), rows)
            self.swap_in(schema, name, tmp, "table")
        return len(rows)

    def _insert_rows(self, schema: str, name: str, width: int, rows: list[list[Any]]) -> None:
        raise NotImplementedError

    def run_test(self, sql: str) -> tuple[int, bool, bool]:
        failures, should_warn, should_error = self.fetchall(sql)[0]
        return int(failures), bool(should_warn), bool(should_error)

