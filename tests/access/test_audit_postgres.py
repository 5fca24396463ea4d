"""A10 on the real PostgreSQL: the database refuses to change or delete audit entries."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def migrated_db(postgres_url):
    """A fresh database migrated by manage.py, as a deployment does; dropped afterwards."""
    name = f"dmaas_audit_{secrets.token_hex(4)}"
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DMAAS_", "CELERY_"))}
        env |= {"DATABASE_URL": url, "DMAAS_DEBUG": "0", "DMAAS_SECRET_KEY": secrets.token_urlsafe(64)}
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def insert_entry(conn, username: str = "gone") -> int:
    user_id = conn.execute(
        "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, email, is_staff,"
        " is_active, date_joined) VALUES (%s, '!', false, '', '', '', false, true, now()) RETURNING id",
        (username,),
    ).fetchone()[0]
    return conn.execute(
        "INSERT INTO models_service_auditentry (at, actor_id, actor_name, action, object_type, object_id,"
        " object_repr, sha, source, details) VALUES (now(), %s, 'gone', 'role.change', 'user', '1', 'x', '',"
        " 'cli', '{}') RETURNING id",
        (user_id,),
    ).fetchone()[0]


def test_update_and_delete_of_an_audit_entry_are_refused(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        entry = insert_entry(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE models_service_auditentry SET action = 'nothing' WHERE id = %s", (entry,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM models_service_auditentry WHERE id = %s", (entry,))
        # Clearing the actor and changing something else at once is refused too.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE models_service_auditentry SET actor_id = NULL, actor_name = '' WHERE id = %s",
                (entry,),
            )
        assert conn.execute(
            "SELECT action FROM models_service_auditentry WHERE id = %s", (entry,)
        ).fetchone() == ("role.change",)


def test_deleting_a_user_keeps_their_entries_with_the_name(migrated_db):
    """on_delete=SET_NULL is the one update the trigger lets through; actor_name keeps who it was."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        entry = insert_entry(conn, "leaver")
        conn.execute("UPDATE models_service_auditentry SET actor_id = NULL WHERE id = %s", (entry,))
        conn.execute("DELETE FROM auth_user WHERE username = 'leaver'")
        row = conn.execute(
            "SELECT actor_id, actor_name, action FROM models_service_auditentry WHERE id = %s", (entry,)
        ).fetchone()
        assert row == (None, "gone", "role.change")  # the name recorded when the entry was written
