"""Fixtures of the PII tests: the runner tests' repository and warehouses, and a legal persona."""

from __future__ import annotations

import pytest

from tests.personas import make_user
from tests.runner.conftest import api_for, duck, postgres_warehouse, repo, warehouse  # noqa: F401


@pytest.fixture
def legal(db):
    """Someone of the legal team: decides on PII tags and may see PII unmasked."""
    return make_user("lena", "legal")
