"""A second copy (DMAAS_COPY) beside production: its schemas, repository and state never meet production's."""

from __future__ import annotations

import json

import pytest

from tests.portal.test_settings import PRODUCTION, start_django

USERS = ["ana", "analytics", "test", "a.b", "test_analytics", "x" * 80]
PROBE = (
    "from django.conf import settings as s; import json;"
    "from runner import ci, preview; from runner import warehouse as wh;"
    f"users = {USERS!r};"
    "U = type('U', (), {'__init__': lambda self, n: setattr(self, 'n', n), 'get_username': lambda self: self.n});"
    "print(json.dumps({'production': wh.production_schema(), 'validation': s.DMAAS_PRODUCTION_SCHEMA,"
    " 'ci': [ci.ci_schema(n) for n in (1, 7, 123456)], 'dev': [preview.dev_schema(U(u)) for u in users],"
    " 'repo': s.DMAAS_REPO, 'var': str(s.VAR_DIR), 'cache': s.CACHES['default']['KEY_PREFIX'],"
    " 'broker': s.CELERY_BROKER_TRANSPORT_OPTIONS.get('global_keyprefix')}))"
)


def _copy(tmp_path, copy: str | None) -> dict:
    env = PRODUCTION | {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}
    if copy:
        env["DMAAS_COPY"] = copy
    result = start_django(tmp_path, env, PROBE)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    found["schemas"] = {found["production"], *found["ci"], *found["dev"]}
    return found


def test_two_copies_build_into_disjoint_schemas_with_their_own_repository(tmp_path):
    production, test = _copy(tmp_path, None), _copy(tmp_path, "test")
    assert production["production"] == "analytics" and test["production"] == "test_analytics"
    assert test["validation"] == test["production"]
    assert production["ci"][0] == "ci_1" and test["ci"][0] == "test_ci_1"
    assert production["dev"][0] == "dev_ana" and test["dev"][0] == "test_dev_ana"
    assert not production["schemas"] & test["schemas"]
    assert all(s.startswith("test_") and len(s) <= 63 for s in test["schemas"])
    # Production's own folders (+schema: x lands in analytics_x) cannot reach the copy's either.
    assert not any(s.startswith("test_") for s in production["schemas"])
    # Even pointed at one DMAAS_VAR_DIR (as here), the copies keep their own repository.
    assert production["var"] == test["var"] and production["repo"] != test["repo"]
    assert test["cache"] == "test" and test["broker"] == "test:"
    assert production["cache"] == "" and production["broker"] is None


def test_a_third_copy_is_disjoint_from_both(tmp_path):
    a, b = _copy(tmp_path, "test"), _copy(tmp_path, "staging")
    assert not a["schemas"] & b["schemas"]


@pytest.mark.parametrize("copy", ["dev", "ci", "analytics", "Test", "te_st", "a" * 12, "1st"])
def test_copy_names_that_could_collide_are_refused(tmp_path, copy):
    result = start_django(tmp_path, PRODUCTION | {"DMAAS_COPY": copy})
    assert result.returncode != 0
    assert "DMAAS_COPY" in result.stderr
