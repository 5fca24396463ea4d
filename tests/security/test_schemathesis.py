"""B11: Schemathesis over every operation of the OpenAPI schema (/api/v1/schema/), as a platform admin
with a bearer token, on a portal holding data (tests/security/xss_world.py: changes, models, runs,
incidents, schedules, PII tags, with payload text). Checks: not_a_server_error and
response_schema_conformance. CI runs DMAAS_FUZZ_EXAMPLES (default 20) examples per operation;
bench/fuzz_api.py runs >= 500."""

from __future__ import annotations

import os

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from tests.personas import PERSONAS, make_persona
from tests.security import fuzz
from tests.security.figures import report
from tests.security.xss_world import build_world

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("DMAAS_FUZZ_EXAMPLES", "20"))


@pytest.fixture
def fuzz_target(duck, settings, monkeypatch):
    """(schema, headers): the app's own schema, read with the admin's token, and a portal with data."""
    from rest_framework.throttling import SimpleRateThrottle

    from portal import tokens

    monkeypatch.setattr(SimpleRateThrottle, "allow_request", lambda self, request, view: True)
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost", "testserver"]
    users = {name: make_persona(name) for name in PERSONAS}
    build_world(users, duck)
    raw = tokens.create_token(users["admin"], users["admin"], name="fuzz", source="api").raw
    headers = {"Authorization": f"Bearer {raw}"}
    answer = Client().get("/api/v1/schema/", HTTP_AUTHORIZATION=headers["Authorization"],
                          HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert answer.status_code == 200, answer.content[:300]
    import json

    schema_dict = json.loads(answer.content) if answer.content.lstrip().startswith(b"{") else \
        __import__("yaml").safe_load(answer.content)
    return fuzz.load_schema(schema_dict, get_wsgi_application()), headers


def test_every_operation_answers_without_5xx_and_as_documented(fuzz_target):
    schema, headers = fuzz_target
    with fuzz.connections_kept():
        results = fuzz.run(schema, headers, EXAMPLES, only=os.environ.get("DMAAS_FUZZ_ONLY", ""))
    total = fuzz.summary(results)
    report("B11", f"{total['operations']} operations x <= {EXAMPLES} examples = {total['examples']} requests: "
           f"{total['server_errors']} server errors, {total['schema_violations']} schema violations, "
           f"{total['other_failures']} generation failures, {total['seconds']} s",
           examples_per_operation=EXAMPLES, **total)
    lines = [f"{label}:\n    " + "\n    ".join(f) for label, f in total["failing"].items()]
    assert total["operations"] >= 50
    assert not total["failing"], "\n" + "\n".join(lines)
