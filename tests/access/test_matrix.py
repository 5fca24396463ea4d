"""A1: every route x every persona x every method answers as the policy says.

The routes are walked from Django's resolver, so a new URL is in the matrix the moment it exists;
without an entry in tests/access/routes.py it fails here. Each case runs in a savepoint that is
rolled back, so a DELETE in one case does not change what the next one sees; the data-models
repository's branches are put back after each case too (git is not in the database's transaction).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from models_service import changes, merging
from models_service import repo as repo_module
from models_service.models import ChangeRequest
from models_service.project_files import ModelSpec
from portal import tokens
from runner import testrun
from tests.access.routes import ADMIN_LOGIN, LOGIN, PREFIX_ENTRIES, PUBLIC_ROUTES, ROUTES
from tests.personas import PERSONAS, make_persona


def walk(resolver: URLResolver | None = None, prefix: str = ""):
    """Every route's pattern string; an included URLconf listed in PREFIX_ENTRIES counts as one."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and route not in PREFIX_ENTRIES:
            yield from walk(pattern, route)
        else:
            yield route


ALL_ROUTES = sorted(set(walk()))


def test_every_route_has_an_entry_in_the_policy_table():
    missing = [route for route in ALL_ROUTES if route not in ROUTES]
    assert not missing, f"add these routes to tests/access/routes.py: {missing}"


def test_the_policy_table_lists_no_route_that_is_gone():
    stale = sorted(set(ROUTES) - set(ALL_ROUTES))
    assert not stale, f"remove these entries from tests/access/routes.py: {stale}"


@pytest.mark.parametrize("route", [r for r in ALL_ROUTES if r not in PUBLIC_ROUTES])
def test_no_route_outside_the_allowlist_lets_an_anonymous_caller_through(route):
    entry = ROUTES.get(route)
    assert entry is not None, f"{route!r} has no entry in tests/access/routes.py"
    answers = {entry.expected("anonymous", method) for method in entry.methods}
    assert answers <= {LOGIN, ADMIN_LOGIN, 401}, f"{route!r} would answer an anonymous caller with {answers}"


def _callbacks(resolver: URLResolver | None = None, prefix: str = ""):
    """(route, view callback) for every route outside PREFIX_ENTRIES."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route not in PREFIX_ENTRIES:
                yield from _callbacks(pattern, route)
        else:
            yield route, pattern.callback


def test_no_api_view_is_allow_any_outside_the_allowlist():
    """A1, read from the code as well as from the answers: AllowAny only where the table allows."""
    offenders, checked = [], 0
    for route, callback in _callbacks():
        view = getattr(callback, "cls", None)
        if view is None or not issubclass(view, APIView) or route in PUBLIC_ROUTES:
            continue
        checked += 1
        if any(issubclass(permission, AllowAny) for permission in view.permission_classes):
            offenders.append(route)
    assert not offenders, f"AllowAny outside the allowlist: {offenders}"
    assert checked >= 8  # me, tokens (2), users (2), audit, schema, docs


def _status_matches(response, expected) -> bool:
    if expected == LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    if expected == ADMIN_LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/admin/login/")
    if expected == 401 and response.status_code == 401:
        return "WWW-Authenticate" in response
    return response.status_code == expected


MODEL = "orders"


class Objects(dict):
    """The objects routes are called on. Those in the data-models repository (a model on main, the
    analyst's draft change that edits it) are made on first use: most routes do not need them."""

    def __missing__(self, key: str):
        if key == "test_run":  # the analyst's "Test my model" of the draft (queued, never run here)
            self["test_run"] = testrun.request_test(self["analyst"], self["change"], self["model"])
            return self["test_run"]
        if key == "submitted":  # another change of the analyst's, submitted for review (reviewers see it)
            analyst = self["analyst"]
            self["model"]  # main has the model first
            change = changes.open_change(analyst, "Submitted for review")
            changes.save_model(analyst, change, "customers", "select 1 as customer_id\n", ModelSpec("customers"))
            self["submitted"] = changes.submit_change(analyst, change)
            return self["submitted"]
        if key == "ci_build":  # the submitted change's CI build (queued by the submission, never run here)
            from runner import ci

            self["ci_build"] = ci.request_build(self["submitted"])
            return self["ci_build"]
        if key == "deployment":  # a deployment record of the submitted change (never run here)
            from runner.models import Deployment

            self["deployment"] = Deployment.objects.create(change=self["submitted"], sha=self["version"],
                                                           target="analytics")
            return self["deployment"]
        if key == "run":  # a finished production run whose model failed: retry has something to run again
            from runner.models import NodeRun, Run

            self["model"]  # main has the model the retry plans
            run = Run.objects.create(target="analytics", status="failed", message="0 of 1 nodes passed, 1 failed")
            NodeRun.objects.create(run=run, unique_id=f"model.dmaas.{MODEL}", name=MODEL, resource_type="model",
                                   status="error", attempts=1, message="boom")
            self["run"] = run
            return self["run"]
        if key == "incident":  # an open incident of the model
            from runner import incidents

            self["incident"] = incidents.report(MODEL, "model_failed", "boom")
            return self["incident"]
        if key == "pii_tag":  # a suggested PII tag of the model on main
            from django.utils import timezone

            from runner.models import PiiTag

            self["pii_tag"] = PiiTag.objects.create(model=self["model"], column="email", category="email",
                                                    confidence=0.9, detected_at=timezone.now())
            return self["pii_tag"]
        if key == "chart":  # a chart of the model on main, saved by the analyst
            from runner.models import Chart

            self["chart"] = Chart.objects.create(model=self["model"], title="Orders by id", kind="bar", x="id",
                                                 aggregate="count", owner=self["analyst"])
            return self["chart"]
        if key == "schedule":  # the default hourly schedule (made on migrate)
            from runner.models import Schedule

            self["schedule"] = Schedule.objects.get()
            return self["schedule"]
        if key == "closing_day":  # a closing day of the company's (the SLA clock skips it)
            import datetime as dt

            from runner.models import ClosingDay

            self["closing_day"] = ClosingDay.objects.create(date=dt.date(2027, 12, 30), name="Matrix")
            return self["closing_day"]
        if key not in ("change", "model", "version"):
            raise KeyError(key)
        analyst, reviewer = self["analyst"], self["reviewer"]
        live = changes.open_change(analyst, f"Add {MODEL}")
        changes.save_model(analyst, live, MODEL, "select 1 as id\n", ModelSpec(MODEL))
        changes.submit_change(analyst, live)
        head = repo_module.get_store().tip(live.branch)
        ChangeRequest.objects.filter(pk=live.pk).update(state="approved", approved_sha=head)
        merging.merge_change(reviewer, live)
        version = repo_module.get_store().tip("refs/heads/main")
        draft = changes.open_change(analyst, "The analyst's draft")
        changes.save_model(analyst, draft, MODEL, "select 2 as id\n", ModelSpec(MODEL))
        self.update(change=draft, model=MODEL, version=version)
        return self[key]


@pytest.fixture(autouse=True)
def repository(tmp_path, settings):
    """Each test's own bare data-models repository, made before the first case so that putting its
    branches back after a case never has to undo its creation."""
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    repo_module.get_store()
    yield Path(settings.DMAAS_REPO)
    repo_module.forget_stores()


def _refs(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", "--git-dir", str(path), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def _put_back(path: Path, before: dict[str, str]) -> None:
    """Undo what a case did to the repository's branches, as the rollback undoes its rows."""
    after = _refs(path)
    commands = [f"delete {ref}\n" for ref in after if ref not in before]
    commands += [f"update {ref} {sha}\n" for ref, sha in before.items() if after.get(ref) != sha]
    if commands:
        subprocess.run(
            ["git", "--git-dir", str(path), "update-ref", "--stdin"],
            input="".join(commands),
            text=True,
            check=True,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("route", ALL_ROUTES)
def test_route_answers_every_persona_and_method_as_the_policy_says(route, repository):
    entry = ROUTES.get(route)
    assert entry is not None, f"{route!r} has no entry in tests/access/routes.py"
    users = {name: make_persona(name) for name in PERSONAS}
    objects = Objects(users)
    objects["token"] = tokens.create_token(users["analyst"], users["analyst"], name="t", source="api").token
    url = entry.url(objects) if callable(entry.url) else entry.url
    clients = {"anonymous": Client(raise_request_exception=False)}
    for name, user in users.items():
        clients[name] = Client(raise_request_exception=False)
        clients[name].force_login(user)

    wrong = []
    for persona, client in clients.items():
        for method in entry.methods:
            body = entry.bodies.get(method, {})
            refs = _refs(repository)
            with transaction.atomic():
                if entry.json:
                    response = client.generic(
                        method, url, data=json.dumps(body), content_type="application/json"
                    )
                elif method == "POST":
                    response = client.post(url, body)
                else:
                    response = client.generic(method, url)
                transaction.set_rollback(True)
            _put_back(repository, refs)
            expected = entry.expected(persona, method)
            if not _status_matches(response, expected):
                wrong.append(
                    f"{persona:>9} {method:<6} {url}: expected {expected}, got {response.status_code}"
                )
    assert not wrong, "\n" + "\n".join(wrong)
