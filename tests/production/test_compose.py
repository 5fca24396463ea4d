"""docker-compose.yml, read as YAML (Docker does not run here): the production shape it promises."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

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
