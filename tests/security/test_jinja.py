"""B4 through the product: each SSTI payload is saved as a model's SQL (PUT on the change's model,
one commit) and then compiled the ways the product compiles it (the preview of the saved change, the
editor's validation). Each must fail with a plain error (the sandbox's SecurityError, an undefined
name, the render caps) or render inert, quickly, and leak nothing: no Python object reprs, no
settings, no environment. The engine-level corpus is tests/engine/test_sandbox.py (ESCAPES, reused
here) with the deadline test; jinja2 >= 3.1.6 is asserted there too."""

from __future__ import annotations

import os
import time

import jinja2
import pytest
from django.conf import settings as dj_settings

from tests.engine.test_sandbox import ESCAPES
from tests.runner.conftest import MAIN_FILES, commit_to_main
from tests.security.figures import report

pytestmark = pytest.mark.django_db

EXTRA = [
    "select {{ this.__class__.__init__.__globals__ }}",
    "select {{ target.__dict__ }}",
    "select {{ var('x', '').__class__.__base__.__subclasses__() }}",
    "select {{ config.get.__self__ }}",
    "select {{ run_query('select * from auth_user') }}",
    "select {{ adapter.execute('drop table x') }}",
    "select {{ env_var('DMAAS_SECRET_KEY') }}",
    "select {{ modules.os.environ }}",
    "select {{ namespace.__init__.__globals__ }}",
    "select {{ joiner.__init__.__globals__['os'].popen('id').read() }}",
    "select {{ ''.__class__.__base__.__subclasses__() }}",
    "{% set x = namespace() %}{% set x.__class__ = 1 %}select 1",
    "select {{ request }}{{ settings }}{{ os }}{{ self }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}select 1",
    "{% extends '../../etc/passwd' %}",
    "select '{{ 'a' * (2 ** 40) }}'",
    "{% for i in range(10**6) %}{% for j in range(10**6) %}{{ i }}{% endfor %}{% endfor %}",
]
PAYLOADS = ESCAPES + EXTRA
# What a leak looks like (a refusal may name the attribute it refused, e.g. '__globals__').
LEAKS = ("<class", "<function", "<module", "<built-in", "'__builtins__'", "'__name__':", "root:x:0",
         "Traceback", "environ(", "environ{", "DJANGO_SETTINGS_MODULE", "uid=")


def _leaks(text: str) -> list[str]:
    secret = dj_settings.SECRET_KEY
    found = [m for m in LEAKS if m in text]
    if secret and secret in text:
        found.append("SECRET_KEY")
    home = os.environ.get("HOME")
    if home and len(home) > 4 and f"'{home}'" in text:
        found.append("HOME")
    return found


def test_ssti_payloads_saved_and_compiled_fail_or_stay_inert(duck, admin_api):
    commit_to_main(MAIN_FILES)
    change = admin_api.post("/api/v1/changes", {"title": "B4 payloads"}, format="json").json()["id"]
    wrong, slowest, outcomes = [], 0.0, {"refused on save": 0, "compile error": 0, "inert": 0}
    for i, payload in enumerate(PAYLOADS):
        name = f"evil_{i}"
        started = time.monotonic()
        saved = admin_api.put(f"/api/v1/changes/{change}/models/{name}", {"sql": payload, "description": ""},
                              format="json")
        answers = [saved]
        if saved.status_code in (200, 201):
            answers.append(admin_api.post("/api/v1/preview", {"sql": payload, "name": name, "change": change},
                                          format="json"))
            answers.append(admin_api.post("/api/v1/validate", {"sql": payload, "name": name, "change": change},
                                          format="json"))
        elif saved.status_code == 400:
            outcomes["refused on save"] += 1
        else:
            wrong.append(f"{payload!r}: save answered {saved.status_code}")
        elapsed = time.monotonic() - started
        slowest = max(slowest, elapsed)
        for answer in answers:
            text = answer.content.decode("utf-8", "replace")
            if answer.status_code >= 500:
                wrong.append(f"{payload!r}: {answer.status_code}")
            if _leaks(text):
                wrong.append(f"{payload!r}: leaks {_leaks(text)} in {answer.request['PATH_INFO']}: {text[:300]}")
            if len(answer.content) > 1_200_000:
                wrong.append(f"{payload!r}: a {len(answer.content)}-byte answer (render cap 1 MB)")
        if len(answers) > 1:
            outcomes["compile error" if answers[1].status_code == 400 else "inert"] += 1
        if elapsed > 3 * 3 + 2:  # three calls, each capped at 2 s of rendering
            wrong.append(f"{payload!r}: {elapsed:.1f} s")
    summary = ", ".join(f"{k} {v}" for k, v in outcomes.items())
    report("B4", f"{len(PAYLOADS) - len(wrong)}/{len(PAYLOADS)} SSTI payloads saved+compiled without effect "
           f"({summary}); slowest save+preview+validate {slowest:.2f} s; jinja2 {jinja2.__version__}",
           total=len(PAYLOADS), wrong=wrong, outcomes=outcomes, slowest_s=round(slowest, 3))
    assert not wrong, "\n" + "\n".join(wrong)
