"""Fixtures of the data-watch tests: the runner tests' repository and warehouses (DuckDB, PostgreSQL)."""

from tests.runner.conftest import api_for, duck, postgres_warehouse, repo, warehouse  # noqa: F401
