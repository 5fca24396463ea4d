"""Warehouse adapters: DuckDB (the embedded default) and PostgreSQL, behind one interface."""

from __future__ import annotations

from ..errors import UsageError
from .base import Adapter


def adapter_for(url: str, **options: object) -> Adapter:
    """`duckdb:///path/file.duckdb`, `duckdb:///:memory:` or `postgresql://user@host:port/db`."""
    if url.startswith("duckdb://"):
        from .duckdb import DuckDBAdapter

        return DuckDBAdapter(url, **options)  # type: ignore[arg-type]
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresAdapter

        return PostgresAdapter(url, **options)  # type: ignore[arg-type]
    raise UsageError(f"unknown warehouse URL {url!r}: use duckdb:///path/to/file.duckdb or postgresql://...")


__all__ = ["Adapter", "adapter_for"]
