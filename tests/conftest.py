"""Fixtures shared by every test package. Keep this small: package fixtures live beside their tests."""

import pytest
from django.core.cache import cache

from tests import services
from tests.personas import make_persona


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the real PostgreSQL server (a role that may create databases)."""
    return services.require_postgres()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a real Redis database that tests may fill and flush."""
    return services.require_redis()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """API throttles count in the cache; user ids repeat between tests, so each starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2's million rounds cost ~0.3 s per user made; tests that need the real cost (the
    concurrent lockout) run in a process of their own without this."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Personas: a user per role, named after it. They need the database (mark the test django_db).
@pytest.fixture
def analyst(db):
    return make_persona("analyst")


@pytest.fixture
def reviewer(db):
    return make_persona("reviewer")


@pytest.fixture
def admin(db):
    """A platform admin (the role), not a Django superuser."""
    return make_persona("admin")


@pytest.fixture
def viewer(db):
    return make_persona("viewer")


@pytest.fixture
def outsider(db):
    """Logged in, but with no role."""
    return make_persona("outsider")
