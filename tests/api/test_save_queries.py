"""A save's cost in database statements (RELIABILITY L1): concurrent saves of one change queue for
its row, so what a save's bookkeeping sends while holding it is paid by every save behind it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from models_service import changes
from portal import tokens

pytestmark = pytest.mark.django_db


def test_a_saves_bookkeeping_holds_the_change_row_for_a_handful_of_statements(analyst, monkeypatch):
    """Lock the row, move head_sha, the audit entry, the model's index rows and the ref's mark: 8
    statements and the two of the test's savepoint (update_or_create, a savepoint in index_models
    and a re-read of the row made it 15)."""
    raw = tokens.create_token(analyst, analyst, name="t", source="cli").raw
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    change = client.post("/api/v1/changes", {"title": "Queries"}, format="json").json()
    client.put(f"/api/v1/changes/{change['id']}/models/first", {"sql": "select 1 as id\n"}, format="json")
    held: list[int] = []
    record = changes._record

    def counted(store, batch):
        before = len(connection.queries)
        record(store, batch)
        held.append(len(connection.queries) - before)

    monkeypatch.setattr(changes, "_record", counted)
    with CaptureQueriesContext(connection) as captured:
        response = client.put(f"/api/v1/changes/{change['id']}/models/second", {"sql": "select 2 as id\n"},
                              format="json")
    assert response.status_code == 201, response.content
    assert len(held) == 1 and held[0] <= 10, "\n".join(q["sql"][:100] for q in captured.captured_queries)
