"""B8: oversized and deeply nested input is refused quickly (RELIABILITY: 413/400 within 100 ms, no
worker crash; the nesting depth is checked before sqlglot). Each case's time is the test client's
full request, measured here and printed."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from django.test import Client

from tests.runner.conftest import MAIN_FILES, commit_to_main
from tests.security.figures import report

pytestmark = pytest.mark.django_db
BUDGET_MS = 100  # RELIABILITY B8, reported
HANG_MS = 10_000
MB = 1024 * 1024


def _timed(call):
    started = time.perf_counter()
    response = call()
    return response, (time.perf_counter() - started) * 1000


def test_oversized_and_nested_bodies_are_refused_quickly(duck, admin, admin_api):
    commit_to_main(MAIN_FILES)
    change = admin_api.post("/api/v1/changes", {"title": "B8"}, format="json").json()["id"]
    admin_api.raise_request_exception = False
    page = Client(raise_request_exception=False)
    page.force_login(admin)
    big_sql = "select 1 as a -- " + "x" * (300 * 1024)
    nested = "select " + "(" * 10_000 + "1" + ")" * 10_000 + " as a"
    ten_mb_json = json.dumps({"sql": "select 1 -- " + "x" * (10 * MB), "name": "b"}).encode()
    ten_mb_form = b"title=" + b"x" * (10 * MB)
    nested_json = b"[" * 100_000 + b"]" * 100_000
    bomb = gzip.compress(json.dumps({"sql": "select 1", "name": "b"}).encode() + b" " * (100 * MB), 9)
    refused = {400, 413, 415}

    def nests(response) -> bool:  # the editor's validation answers 200 with the error as a diagnostic
        return response.status_code == 200 and "nests" in response.json()["diagnostics"][0]["message"]

    cases = {
        "10 MB JSON body (preview)": (lambda: admin_api.generic(
            "POST", "/api/v1/preview", ten_mb_json, content_type="application/json"), refused),
        "10 MB JSON body (model save)": (lambda: admin_api.generic(
            "PUT", f"/api/v1/changes/{change}/models/big", ten_mb_json, content_type="application/json"), refused),
        "10 MB form body (page)": (lambda: page.generic(
            "POST", "/changes/new/", ten_mb_form, content_type="application/x-www-form-urlencoded"), refused),
        "model > 256 KB (save)": (lambda: admin_api.put(
            f"/api/v1/changes/{change}/models/big", {"sql": big_sql, "description": ""}, format="json"), refused),
        "model > 256 KB (preview)": (lambda: admin_api.post(
            "/api/v1/preview", {"sql": big_sql, "name": "big"}, format="json"), refused),
        "model > 256 KB (validate)": (lambda: admin_api.post(
            "/api/v1/validate", {"sql": big_sql, "name": "big"}, format="json"), refused),
        "10k nested parentheses (preview)": (lambda: admin_api.post(
            "/api/v1/preview", {"sql": nested, "name": "deep"}, format="json"), refused),
        "10k nested parentheses (validate: a diagnostic)": (lambda: admin_api.post(
            "/api/v1/validate", {"sql": nested, "name": "deep"}, format="json"), nests),
        # A draft may hold broken SQL (it is saved as typed); what matters is that nothing parses it
        # unguarded: the save and the index survive it and the preview of the saved change refuses it.
        "10k nested parentheses (saved as a draft)": (lambda: admin_api.put(
            f"/api/v1/changes/{change}/models/deep", {"sql": nested, "description": ""}, format="json"),
            {200, 201}),
        "10k nested parentheses (preview of the saved draft)": (lambda: admin_api.post(
            "/api/v1/preview", {"sql": nested, "name": "deep", "change": change}, format="json"), refused),
        "100k nested JSON arrays": (lambda: admin_api.generic(
            "POST", "/api/v1/preview", nested_json, content_type="application/json"), refused),
        f"gzip bomb ({len(bomb) // 1024} KB -> 100 MB)": (lambda: admin_api.generic(
            "POST", "/api/v1/preview", bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"),
            refused),
    }
    # The 100 ms of RELIABILITY B8 is a figure printed here, not asserted (a loaded CI machine is no
    # stopwatch); what is asserted is the answer, and that none takes long enough to be a hang.
    results, wrong, slow = {}, [], []
    for label, (call, ok) in cases.items():
        response, ms = _timed(call)
        results[label] = {"status": response.status_code, "ms": round(ms, 1)}
        good = ok(response) if callable(ok) else response.status_code in ok
        if not good:
            wrong.append(f"{label}: {response.status_code} {response.content[:200]!r}")
        elif ms > HANG_MS:
            wrong.append(f"{label}: {response.status_code} after {ms:.0f} ms: close to a hang")
        elif ms > (BUDGET_MS if ok is refused else 2000):  # a save that is accepted: L1's 2 s
            slow.append(label)
    worst = max(r["ms"] for r in results.values())
    report("B8", f"{len(cases) - len(wrong)}/{len(cases)} oversized/nested inputs refused, "
           f"{len(cases) - len(wrong) - len(slow)} within {BUDGET_MS} ms "
           f"(slowest {worst:.0f} ms): " + "; ".join(f"{k} {v['status']} {v['ms']:.0f} ms" for k, v in results.items()),
           results=results, wrong=wrong, slow=slow)
    assert not wrong, "\n" + "\n".join(wrong)
