"""Fixtures of the security suites (RELIABILITY.md B1-B11, A6, A8): a fresh bare data-models
repository per test, warehouses on DuckDB and on the real PostgreSQL (a failure, not a skip, under
CI=true: tests/services.py), and API clients that authenticate as a platform admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from models_service import repo as repo_module
from portal import tokens
from runner import warehouse as wh
from tests.runner.conftest import duckdb_warehouse, postgres_warehouse  # noqa: F401 - a fixture


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.security)


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield path
    repo_module.forget_stores()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_warehouse(request, tmp_path, settings):
    wh.forget_warehouses()
    if request.param == "duckdb":
        yield duckdb_warehouse(tmp_path, settings)
    else:
        yield request.getfixturevalue("postgres_warehouse")
    wh.forget_warehouses()


@pytest.fixture
def duck(tmp_path, settings):
    wh.forget_warehouses()
    yield duckdb_warehouse(tmp_path, settings)
    wh.forget_warehouses()


@pytest.fixture
def admin_api(admin) -> APIClient:
    """A platform admin's API client, authenticated by a real bearer token (no session, no CSRF)."""
    issued = tokens.create_token(admin, admin, name="security", source="api")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


MIDDLEWARE_PATH = "portal.security_headers.SecurityHeadersMiddleware"


@pytest.fixture(autouse=True)
def _security_middleware(settings):
    """The suites test the middleware whether or not settings.MIDDLEWARE lists it yet;
    test_headers.py::test_the_security_middleware_is_installed checks that it does."""
    if MIDDLEWARE_PATH not in settings.MIDDLEWARE:
        stack = list(settings.MIDDLEWARE)
        at = stack.index("django.middleware.security.SecurityMiddleware") + 1
        settings.MIDDLEWARE = [*stack[:at], MIDDLEWARE_PATH, *stack[at:]]
