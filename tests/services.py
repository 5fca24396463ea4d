"""Reaching the real PostgreSQL and Redis that some tests need.

On a developer's machine a missing server skips those tests. Under CI=true it fails them: a CI run
that skipped its database tests would report green while proving nothing.
"""

import os

import psycopg
import pytest
import redis

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("DMAAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DMAAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def require_postgres() -> str:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at DMAAS_TEST_POSTGRES_URL={POSTGRES_URL} is unreachable: {exc}")
    return POSTGRES_URL


def require_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at DMAAS_TEST_REDIS_URL={REDIS_URL} is unreachable: {exc}")
    return REDIS_URL
