import psycopg
import pytest

pytestmark = pytest.mark.postgres


def test_postgres_answers_and_lets_the_test_role_create_databases(postgres_url):
    with psycopg.connect(postgres_url, connect_timeout=3) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        # pytest-django and the engine's PostgreSQL tests create their own databases.
        can_create = conn.execute("select rolcreatedb or rolsuper from pg_roles where rolname = current_user")
        assert can_create.fetchone() == (True,)
