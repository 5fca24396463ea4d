"""docker-compose.yml: the production shape it promises, read as YAML, and checked by Compose itself
(`docker-compose config`: its schema and interpolation; no Docker engine runs here, so nothing is started)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_process_of_the_production_shape_is_there():
    assert set(SERVICES) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert set(COMPOSE["volumes"]) == {"postgres", "redis", "repo"}
    assert "--appendonly" in SERVICES["redis"]["command"] and "yes" in SERVICES["redis"]["command"]
    assert SERVICES["web"]["command"][0] == "gunicorn"
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in SERVICES[name], name
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_previews_and_builds_use_their_own_roles_and_only_migrate_holds_the_admin_login():
    for name in ("web", "worker", "beat", "migrate"):
        env = SERVICES[name]["environment"]
        assert env["DMAAS_WAREHOUSE"].startswith("postgresql://dmaas_warehouse:")
        assert env["DMAAS_PREVIEW_WAREHOUSE_URL"].startswith("postgresql://dmaas_preview:")
        assert env["DMAAS_LOG_FORMAT"] == "json"
        assert ("DMAAS_WAREHOUSE_ADMIN_URL" in env) == (name == "migrate")
    assert "dmaas_warehouse_roles --apply" in SERVICES["migrate"]["command"][-1]


def test_every_variable_compose_needs_is_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert needed <= example, needed - example


def _read_by_the_code(name: str) -> bool:
    quoted = (f'"{name}"', f"'{name}'")
    return any(q in path.read_text() for folder in ("portal", "runner", "models_service")
               for path in (ROOT / folder).rglob("*.py") for q in quoted)


def test_every_setting_compose_and_env_example_pass_is_read_by_the_portal():
    """A misspelt name would be passed and silently ignored, and the default would run production."""
    passed = set(COMPOSE["x-app-env"]) | set(SERVICES["migrate"]["environment"])
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    for_compose_itself = {"POSTGRES_PASSWORD", "WAREHOUSE_PASSWORD", "PREVIEW_PASSWORD",
                          "DMAAS_PROD_WEB_WORKERS", "DMAAS_PROD_WEB_THREADS", "DMAAS_PROD_CONCURRENCY",
                          "DMAAS_PROD_WEB_MAX_REQUESTS", "DMAAS_PROD_WEB_MAX_REQUESTS_JITTER"}  # interpolated into this file
    assert for_compose_itself <= set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    unread = sorted(name for name in (passed | example) - for_compose_itself if not _read_by_the_code(name))
    assert unread == []


def test_the_plain_http_port_is_published_on_loopback_only_and_process_counts_are_explicit():
    assert SERVICES["web"]["ports"] and all(p.startswith("127.0.0.1:") for p in SERVICES["web"]["ports"])
    assert "${DMAAS_PROD_WEB_WORKERS:-3}" in SERVICES["web"]["command"]
    assert "${DMAAS_PROD_WEB_THREADS:-4}" in SERVICES["web"]["command"]  # gthread: saves group-commit
    assert "${DMAAS_PROD_CONCURRENCY:-2}" in SERVICES["worker"]["command"]
    prod = (ROOT / "scripts" / "prod").read_text()
    assert 'web_workers="${DMAAS_PROD_WEB_WORKERS:-3}"' in prod and 'concurrency="${DMAAS_PROD_CONCURRENCY:-2}"' in prod
    assert 'web_threads="${DMAAS_PROD_WEB_THREADS:-4}"' in prod and '--threads "$web_threads"' in prod


def test_one_shared_cache_for_the_web_workers_and_the_data_on_named_volumes():
    assert COMPOSE["x-app-env"]["DMAAS_CACHE_URL"].startswith("redis://redis:")
    assert 'DMAAS_CACHE_URL="${DMAAS_CACHE_URL:-$CELERY_BROKER_URL}"' in (ROOT / "scripts" / "prod").read_text()
    mounts = {name: SERVICES[name].get("volumes", []) for name in SERVICES}
    assert "postgres:/var/lib/postgresql/data" in mounts["postgres"] and "redis:/data" in mounts["redis"]
    for name in ("web", "worker", "beat", "migrate"):  # saves (web) and builds (worker) share one repository
        assert "repo:/data" in mounts[name], name
    assert "ENV DMAAS_REPO=/data/" in (ROOT / "Dockerfile").read_text()


def _compose_config(tmp_path: Path, env: str) -> subprocess.CompletedProcess:
    """`docker-compose config` (Compose's own parser, schema and interpolation; it needs no Docker
    engine) on a copy of the file beside the given .env."""
    if not shutil.which("docker-compose"):
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(env)
    return subprocess.run(["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def _filled_env_example() -> str:
    """.env.example with its blank secrets filled in, as an operator would."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        lines.append(f"{name}=secret-{name.lower()}" if sep and not line.startswith("#") and not value and
                     (name.endswith("PASSWORD") or name == "DMAAS_SECRET_KEY") else line)
    return "\n".join(lines) + "\n"


def test_compose_itself_accepts_the_file_with_env_example_filled_in(tmp_path):
    result = _compose_config(tmp_path, _filled_env_example())
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == set(SERVICES)
    web = resolved["services"]["web"]
    assert web["environment"]["DMAAS_SECRET_KEY"] == "secret-dmaas_secret_key"
    assert web["environment"]["DMAAS_WAREHOUSE"].startswith("postgresql://dmaas_warehouse:secret-warehouse_password@")
    assert web["command"][web["command"].index("--workers") + 1] == "3"  # DMAAS_PROD_WEB_WORKERS from the .env
    assert web["command"][web["command"].index("--threads") + 1] == "4"  # DMAAS_PROD_WEB_THREADS


def test_compose_refuses_to_start_without_the_passwords(tmp_path):
    result = _compose_config(tmp_path, (ROOT / ".env.example").read_text())
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_web_and_worker_processes_are_recycled_by_default_and_each_guard_can_be_changed():
    """RELIABILITY L6: gunicorn replaces a worker after --max-requests, with the same defaults in compose and
    scripts/prod; Celery's pool processes are recycled by settings every worker reads from .env."""
    web = SERVICES["web"]["command"]
    assert web[web.index("--max-requests") + 1] == "${DMAAS_PROD_WEB_MAX_REQUESTS:-5000}"
    assert web[web.index("--max-requests-jitter") + 1] == "${DMAAS_PROD_WEB_MAX_REQUESTS_JITTER:-500}"
    prod = (ROOT / "scripts" / "prod").read_text()
    assert 'max_requests="${DMAAS_PROD_WEB_MAX_REQUESTS:-5000}"' in prod
    assert 'max_requests_jitter="${DMAAS_PROD_WEB_MAX_REQUESTS_JITTER:-500}"' in prod
    assert '--max-requests "$max_requests" --max-requests-jitter "$max_requests_jitter"' in prod
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example["DMAAS_PROD_WEB_MAX_REQUESTS"] == "5000" and example["DMAAS_PROD_WEB_MAX_REQUESTS_JITTER"] == "500"
    assert example["DMAAS_WORKER_MAX_TASKS_PER_CHILD"] == "1000" and example["DMAAS_WORKER_MAX_MEMORY_MB"] == "1024"
    # the worker keeps Celery's default pool, prefork: the only one that honours the recycling settings
    assert not {"-P", "--pool"} & set(SERVICES["worker"]["command"])
    assert "--pool" not in prod and " -P " not in prod
