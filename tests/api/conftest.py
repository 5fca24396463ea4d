"""Fixtures of the API tests: a fresh bare data-models repository per test, and API clients per persona."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from models_service import repo as repo_module


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    """This test's bare data-models repository (created on first use, as on a fresh install)."""
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield path
    repo_module.forget_stores()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def as_analyst(analyst) -> APIClient:
    return client_for(analyst)


@pytest.fixture
def as_reviewer(reviewer) -> APIClient:
    return client_for(reviewer)
