"""Fixtures shared by every test package. Keep this small: package fixtures live beside their tests."""

import pytest

from tests import services


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the real PostgreSQL server (a role that may create databases)."""
    return services.require_postgres()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a real Redis database that tests may fill and flush."""
    return services.require_redis()
