"""PostgreSQL through psycopg 3: a connection per thread, DDL inside transactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Adapter, rel

CONNECT_TIMEOUT = 10  # seconds; a `connect_timeout` in the warehouse URL wins


class PostgresAdapter(Adapter):
    type = "postgres"
    dialect = "postgres"
    drop_cascade = " cascade"
    cache_catalog = False
    param = "%s"

    def __init__(self, url: str, statement_timeout_ms: int | None = None):
        super().__init__(url)
        self.statement_timeout_ms = statement_timeout_ms

    def _connect(self) -> Any:
        import psycopg

        kwargs: dict[str, Any] = {"autocommit": True}
        if self.statement_timeout_ms:
            kwargs["options"] = f"-c statement_timeout={int(self.statement_timeout_ms)}"
        if "connect_timeout" not in self.url:
            # A warehouse that accepts and never answers must not hold a worker until Celery's hard
            # limit: the connection gives up ("connection timeout expired", retried as transient).
            kwargs["connect_timeout"] = CONNECT_TIMEOUT
        return psycopg.connect(self.url, **kwargs)

    def _interrupt(self, conn: Any) -> None:
        conn.cancel_safe(timeout=5)  # the server cancels the running statement

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        cur = self.connection().cursor()
        cur.execute(sql.encode() if params is None else sql, params)  # bytes: no %-placeholder parsing
        return cur

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def _create_table_as(self, schema: str, name: str, sql: str) -> int | None:
        cur = self.execute(f"create table {rel(schema, name)} as (\n{sql}\n)")
        return cur.rowcount if cur.rowcount >= 0 else None

    def _rowcount(self, sql: str) -> int | None:
        cur = self.execute(sql)
        return cur.rowcount if cur.rowcount >= 0 else None

    def _insert_rows(self, schema: str, name: str, width: int, rows: list[list[Any]]) -> None:
        cur = self.connection().cursor()
        with cur.copy(f"copy {rel(schema, name)} from stdin") as copy:
            for row in rows:
                copy.write_row(row)
