"""Fixtures of the reliability suite: the API test's bare repository per test, private servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from models_service import repo as repo_module
from runner import warehouse as wh

from .services import PrivatePostgres, PrivateRedis


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    wh.forget_warehouses()
    yield path
    repo_module.forget_stores()
    wh.forget_warehouses()


@pytest.fixture
def private_redis(tmp_path):
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def private_postgres():
    with PrivatePostgres() as server:
        yield server
