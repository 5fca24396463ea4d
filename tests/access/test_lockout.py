"""A7: the login lockout (django-axes plus the login guard) after 10 failures, also under concurrency."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import time_machine
from django.utils import timezone

from tests.personas import PASSWORD, make_user

REPO = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"


def login(client, password, username="ada", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


@pytest.mark.django_db
def test_tenth_failure_locks_and_then_even_the_right_password_is_refused(client, settings):
    make_user("ada", "analyst")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 200
    assert login(client, "wrong").status_code == 429  # the tenth failure answers with the lockout
    response = login(client, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_ends_after_the_cool_off(client, settings):
    make_user("ada", "analyst")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 429
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=5)):
        assert login(client, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_lockout_counts_per_username_whatever_the_address_or_browser(client, settings):
    """Rotating the address and User-Agent (axes.W006's worry) buys an attacker nothing."""
    make_user("ada", "analyst")
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, "wrong", REMOTE_ADDR=f"10.1.1.{n + 1}", HTTP_USER_AGENT=f"bot/{n}")
    response = login(client, PASSWORD, REMOTE_ADDR="10.9.9.9", HTTP_USER_AGENT="fresh")
    assert response.status_code == 429


@pytest.mark.django_db
def test_a_successful_login_starts_the_count_again(client, settings):
    make_user("ada", "analyst")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 200
    assert login(client, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_another_account_is_not_locked_by_a_neighbour(client, settings):
    make_user("ada", "analyst")
    make_user("bob", "analyst")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "wrong", username="ada")
    assert login(client, PASSWORD, username="bob").status_code == 302


@pytest.mark.django_db
def test_the_django_admin_login_is_locked_too(client, settings):
    make_user("adam", "admin")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "adam", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "adam", "password": PASSWORD})
    assert response.status_code == 429


def run_driver(env: dict[str, str], attempts: int = 50) -> dict:
    """tests/access/lockout_driver.py in a fresh interpreter: DEBUG off, the real password hasher.

    PYTEST_VERSION stays set, so the settings serve static files without a collectstatic manifest.
    """
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DMAAS_", "CELERY_")) and name != "DATABASE_URL"
    }
    clean |= {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DMAAS_DEBUG": "0",
        "DMAAS_SECRET_KEY": secrets.token_urlsafe(64),
        "DMAAS_LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.access.lockout_driver", str(attempts)],
        env=clean | env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["statuses"] = {int(status): count for status, count in report["statuses"].items()}
    return report


def assert_lockout_held(report: dict, limit: int = 10, attempts: int = 50) -> None:
    # Exactly `limit` passwords were tried; every other attempt was refused before the hasher.
    # (Of the tried ones, those recorded as the limit-th failure or later already answer 429.)
    assert report["passwords_checked"] == limit, report
    assert set(report["statuses"]) <= {200, 429}, report
    assert sum(report["statuses"].values()) == attempts, report
    assert report["statuses"].get(200, 0) <= limit - 1, report
    assert report["right_password_status"] == 429, report
    assert report["axes_failures_recorded"] >= limit, report


def test_fifty_parallel_wrong_passwords_on_sqlite_try_only_ten(tmp_path):
    report = run_driver({"DMAAS_VAR_DIR": str(tmp_path / "var")})
    assert report["vendor"] == "sqlite"
    assert_lockout_held(report)


@pytest.mark.postgres
def test_fifty_parallel_wrong_passwords_on_postgresql_try_only_ten(postgres_url):
    name = f"dmaas_lockout_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        report = run_driver({"DATABASE_URL": postgres_url.rsplit("/", 1)[0] + f"/{name}"})
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert report["vendor"] == "postgresql"
    assert_lockout_held(report)
