import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_secret, secret_key_problem

REPO = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3Y-" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
PRODUCTION = {
    "DMAAS_DEBUG": "0",
    "DMAAS_SECRET_KEY": GOOD_KEY,
    "DMAAS_ALLOWED_HOSTS": "dmaas.example.com",
    "DMAAS_HTTPS": "1",
}


def start_django(tmp_path: Path, env: dict[str, str], code: str = "", *args: str) -> subprocess.CompletedProcess:
    """Start Django in a fresh interpreter with exactly `env` on top of a clean environment.

    A subprocess, because settings are read once per process; PYTEST_VERSION is dropped so the
    settings behave as in a real start, and var/ points at a temporary folder.
    """
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DMAAS_", "CELERY_", "PYTEST_"))
        and name not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    clean |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "DMAAS_VAR_DIR": str(tmp_path / "var")}
    command = args or ("-c", f"import django; django.setup(); {code}")
    return subprocess.run(
        [sys.executable, *command], env=clean | env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("value", ["1", "true", "Yes", "ON"])
def test_env_bool_reads_true(monkeypatch, value):
    monkeypatch.setenv("X_FLAG", value)
    assert env_bool("X_FLAG", False) is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_env_bool_reads_false(monkeypatch, value):
    monkeypatch.setenv("X_FLAG", value)
    assert env_bool("X_FLAG", True) is False


def test_env_helpers_take_the_default_for_unset_or_empty(monkeypatch):
    monkeypatch.delenv("X_UNSET", raising=False)
    monkeypatch.setenv("X_EMPTY", "  ")
    assert env_bool("X_UNSET", True) is True
    assert env_bool("X_EMPTY", False) is False
    assert env_int("X_EMPTY", 7) == 7
    assert env_list("X_UNSET", ["a"]) == ["a"]


@pytest.mark.parametrize(
    ("helper", "value", "message"),
    [
        (lambda: env_bool("X_VALUE", False), "maybe", "is not a boolean"),
        (lambda: env_int("X_VALUE", 1), "ten", "is not a whole number"),
        (lambda: env_int("X_VALUE", 1, minimum=1), "0", "below the minimum"),
    ],
)
def test_env_helpers_refuse_malformed_values(monkeypatch, helper, value, message):
    monkeypatch.setenv("X_VALUE", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example , ,b.example,")
    assert env_list("X_LIST", []) == ["a.example", "b.example"]


def test_env_secret_reads_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret_file))
    assert env_secret("X_SECRET") == "s3cret"


def test_env_secret_refuses_both_value_and_file_and_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("X_SECRET", "a")
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_secret("X_SECRET")
    monkeypatch.delenv("X_SECRET")
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("X_SECRET")


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "is not set"),
        ("short-but-random-Zq8", "shorter than 50"),
        ("django-insecure-" + "x1y2z3" * 10, "placeholder"),
        ("change-me-to-a-long-random-string-" + "abcdefgh" * 4, "placeholder"),
        ("a" * 60, "fewer than 5"),
        (GOOD_KEY, None),
    ],
)
def test_secret_key_problem(key, problem):
    found = secret_key_problem(key)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "DMAAS_SECRET_KEY is not set"),
        ("too-short-Zq8", "DMAAS_SECRET_KEY is shorter than 50 characters"),
        ("change-me-to-a-long-random-string-" + "abcdefgh" * 4, "DMAAS_SECRET_KEY is a placeholder"),
    ],
)
def test_refuses_to_start_outside_debug_without_a_good_secret_key(tmp_path, key, message):
    env = {"DMAAS_DEBUG": "0"} | ({"DMAAS_SECRET_KEY": key} if key else {})
    result = start_django(tmp_path, env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_starts_outside_debug_with_a_good_secret_key(tmp_path):
    result = start_django(tmp_path, PRODUCTION, "print('started')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_debug_generates_one_key_per_install_and_keeps_it(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = start_django(tmp_path, {"DMAAS_DEBUG": "1"}, code)
    second = start_django(tmp_path, {"DMAAS_DEBUG": "1"}, code)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text()
    assert secret_key_problem(key_file.read_text()) is None
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DMAAS_DEBUG": "maybe"}, "DMAAS_DEBUG='maybe' is not a boolean"),
        ({"DMAAS_TIME_ZONE": "Mars/Olympus"}, "not a known time zone"),
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "must be filesystem:// or redis://"),
        (
            {"CELERY_BROKER_URL": "redis://localhost/0", "DMAAS_REDIS_VISIBILITY_TIMEOUT": "3600"},
            "must exceed DMAAS_TASK_TIME_LIMIT",
        ),
        ({"DMAAS_CACHE_URL": "memcached://cache:11211"}, "DMAAS_CACHE_URL must be a redis:// URL"),
        ({"DMAAS_API_RATE": "fast"}, "DMAAS_API_RATE='fast' is not a rate"),
        ({"DMAAS_API_TOKEN_DAYS": "400"}, "DMAAS_API_TOKEN_DAYS must not exceed"),
        ({"DMAAS_LOGIN_FAILURE_LIMIT": "0"}, "below the minimum"),
        ({"DMAAS_WORKER_MAX_TASKS_PER_CHILD": "-1"}, "below the minimum"),
        ({"DMAAS_WORKER_MAX_MEMORY_MB": "1GB"}, "DMAAS_WORKER_MAX_MEMORY_MB='1GB' is not a whole number"),
    ],
)
def test_refuses_to_start_with_malformed_settings(tmp_path, env, message):
    result = start_django(tmp_path, PRODUCTION | env)
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_defaults_need_no_server(tmp_path):
    code = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'db': s.DATABASES['default'], 'broker': s.CELERY_BROKER_URL, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        "'warehouse': s.DMAAS_WAREHOUSE, 'repo': s.DMAAS_REPO, 'tz': s.TIME_ZONE}, default=str))"
    )
    result = start_django(tmp_path, PRODUCTION, code)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    var = tmp_path / "var"
    assert found["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert found["db"]["NAME"] == str(var / "portal.sqlite3")
    assert "journal_mode=WAL" in found["db"]["OPTIONS"]["init_command"]
    assert found["db"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert found["broker"].startswith("filesystem://")
    options = found["options"]
    # kombu's defaults use two folders and then never deliver: one folder, created by us.
    assert options["data_folder_in"] == options["data_folder_out"]
    assert Path(options["data_folder_in"]).is_dir() and Path(options["control_folder"]).is_dir()
    assert found["warehouse"] == f"duckdb:///{var / 'warehouse.duckdb'}"
    assert found["repo"] == str(var / "data-models.git")
    assert found["tz"] == "Europe/Berlin"


def test_production_urls_switch_to_postgresql_and_redis(tmp_path):
    env = PRODUCTION | {
        "DATABASE_URL": "postgresql://dmaas:pw@db.internal:5432/dmaas",
        "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    }
    code = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'engine': s.DATABASES['default']['ENGINE'], 'host': s.DATABASES['default']['HOST'],"
        "'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'limit': s.CELERY_TASK_TIME_LIMIT}))"
    )
    result = start_django(tmp_path, env, code)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["host"] == "db.internal"
    assert found["options"]["visibility_timeout"] > found["limit"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [1000, 1024 * 1024]),  # kB, as Celery takes it
        ({"DMAAS_WORKER_MAX_TASKS_PER_CHILD": "50", "DMAAS_WORKER_MAX_MEMORY_MB": "256"}, [50, 256 * 1024]),
        ({"DMAAS_WORKER_MAX_TASKS_PER_CHILD": "0", "DMAAS_WORKER_MAX_MEMORY_MB": "0"}, [None, None]),  # off
    ],
)
def test_celery_pool_processes_are_recycled_by_default_and_each_guard_can_be_changed(tmp_path, env, expected):
    """RELIABILITY L6: what the worker's prefork pool gets, read through the project's Celery app."""
    code = (
        "from portal.celery import app; import json; "
        "print(json.dumps([app.conf.worker_max_tasks_per_child, app.conf.worker_max_memory_per_child]))"
    )
    result = start_django(tmp_path, PRODUCTION | env, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_deploy_check_passes_with_production_settings(tmp_path):
    result = start_django(tmp_path, PRODUCTION, "", "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


def test_deploy_check_fails_when_https_is_off(tmp_path):
    result = start_django(
        tmp_path, PRODUCTION | {"DMAAS_HTTPS": "0"}, "", "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr  # SECURE_SSL_REDIRECT
