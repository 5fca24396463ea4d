"""The review API (issue 6, item 6), on a real bare git repository and, for CI, a DuckDB warehouse.

Reviewers see the queue in due order; a verdict is bound to the version it saw and never given on
one's own change; request-changes needs words; comments make threads on a model's line; the review
of a change shows its diff, its CI build and the policy's verdict; a build can be run again; the
auto-approval policy is read by reviewers and changed by platform admins only, each change audited;
deployments are listed with their change. Builds are queued by the services and run here by calling
the task's body (runner.ci.execute), as the worker would.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from models_service import audit, changes, index
from models_service.models import ChangeRequest
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from models_service.repo import get_store
from runner import ci, preview
from runner import warehouse as wh
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, RunOptions
from runner.engine.project import MappingSource, load_project
from runner.models import BuildStatus, CIBuild, Deployment, DeployStatus
from tests.personas import make_user
from tests.runner.conftest import commit_to_main, duckdb_warehouse

from .conftest import client_for

pytestmark = pytest.mark.django_db

MAIN = {
    "models/stg_orders.sql": "{{ config(materialized='table') }}\n"
    "select * from (values (1, 'open'), (2, 'shipped'), (3, 'open')) as t(order_id, status)\n",
    "models/orders.sql": "{{ config(materialized='table') }}\nselect order_id, status from {{ ref('stg_orders') }}\n",
    "models/order_count.sql": "select count(*) as n from {{ ref('orders') }}\n",
    "models/customers.sql": "{{ config(materialized='table') }}\nselect 10 as customer_id\n",
    "models/orders.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n"
    "        data_tests: [unique, not_null]\n",
}
ORDERS_SPEC = ModelSpec("orders", columns=[ColumnSpec("order_id", tests=[DataTest("unique"), DataTest("not_null")])])
OWN_CHANGE = "You cannot review your own change: another reviewer has to approve it."


@pytest.fixture
def main():
    """Main's models, indexed as a merge or the sync task would index them."""
    sha = commit_to_main(MAIN)
    index.rebuild(get_store())
    return sha


@pytest.fixture
def duck(tmp_path, settings, main):
    """A DuckDB warehouse whose production schema holds main, built."""
    wh.forget_warehouses()
    warehouse = duckdb_warehouse(tmp_path, settings)
    store = get_store()
    files = preview.project_files(store, store.tip("refs/heads/main"))
    manifest = Compiler(load_project(MappingSource(files)), Target(schema="analytics", type=wh.get_warehouse().type)
                        ).compile()
    with wh.get_warehouse().build() as adapter:
        assert Executor(manifest, adapter, RunOptions(threads=1)).run(set(manifest.nodes)).ok
    yield warehouse
    wh.forget_warehouses()


@pytest.fixture
def ana(db):
    return make_user("ana", "analyst")


@pytest.fixture
def rex(db):
    """A reviewer who also writes models: they may review others' changes, never their own."""
    return make_user("rex", "reviewer", "analyst")


def submitted(author, title="Customers get a new id", sql=None, specs=None) -> ChangeRequest:
    change = changes.open_change(author, title)
    for name, text in (sql or {"customers": "select 2 as customer_id\n"}).items():
        changes.save_model(author, change, name, text, (specs or {}).get(name, ModelSpec(name)))
    return changes.submit_change(author, change)


def head_of(change: ChangeRequest) -> str:
    return ChangeRequest.objects.get(pk=change.pk).head_sha


def error_of(response, status: int, field=None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field and error["message"]
    return error


# --------------------------------------------------------------------------- the queue


def test_the_queue_lists_changes_under_review_soonest_due_first(main, ana, rex, reviewer):
    recent = submitted(ana, "Recent")
    old = submitted(rex, "Old")
    draft = changes.open_change(ana, "Not submitted")
    now = timezone.now()
    ChangeRequest.objects.filter(pk=recent.pk).update(submitted_at=now - dt.timedelta(hours=1))
    ChangeRequest.objects.filter(pk=old.pk).update(submitted_at=now - dt.timedelta(days=10))

    items = client_for(reviewer).get("/api/v1/review-queue").json()
    assert [i["id"] for i in items] == [old.pk, recent.pk]
    assert draft.pk not in {i["id"] for i in items}
    first, second = items
    assert first["overdue"] is True and second["overdue"] is False
    assert first["due"] < second["due"] and first["author"] == "rex" and first["title"] == "Old"
    assert second["age_hours"] == pytest.approx(1, abs=0.1)
    assert second["ci_status"] == "queued"  # the submission queued its build
    assert second["auto_approval_eligible"] is None  # not judged before a build has run


def test_show_mine_leaves_out_ones_own_changes_and_overdue_only_late_ones(main, ana, rex):
    others = submitted(ana, "Ana's")
    own = submitted(rex, "Rex's")
    ChangeRequest.objects.filter(pk=own.pk).update(submitted_at=timezone.now() - dt.timedelta(days=10))
    as_rex = client_for(rex)

    assert {i["id"] for i in as_rex.get("/api/v1/review-queue?show=all").json()} == {others.pk, own.pk}
    assert [i["id"] for i in as_rex.get("/api/v1/review-queue?show=mine").json()] == [others.pk]
    assert [i["id"] for i in as_rex.get("/api/v1/review-queue?show=overdue").json()] == [own.pk]
    error_of(as_rex.get("/api/v1/review-queue?show=everything"), 400, "show")


def test_the_queue_is_for_reviewers(as_analyst, viewer):
    assert as_analyst.get("/api/v1/review-queue").status_code == 403
    assert client_for(viewer).get("/api/v1/review-queue").status_code == 403


# --------------------------------------------------------------------------- verdicts


def test_nobody_approves_their_own_change_through_the_api(main, rex):
    change = submitted(rex)
    response = client_for(rex).post(f"/api/v1/changes/{change.pk}/approve", {}, format="json")
    error = error_of(response, 403)
    assert error["code"] == "permission_denied" and error["message"] == OWN_CHANGE
    assert client_for(rex).post(f"/api/v1/changes/{change.pk}/request-changes", {"body": "Hm."},
                                format="json").json()["error"]["message"] == OWN_CHANGE
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"


def test_an_approval_is_bound_to_the_latest_version(main, ana, reviewer):
    change = submitted(ana)
    as_reviewer = client_for(reviewer)
    url = f"/api/v1/changes/{change.pk}/approve"

    stale = as_reviewer.post(url, {"sha": "0" * 40}, format="json")
    assert error_of(stale, 409)["code"] == "invalid_state"
    assert "newer version" in stale.json()["error"]["message"]
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"
    error_of(as_reviewer.post(url, {"sha": "abc"}, format="json"), 400, "sha")

    head = head_of(change)
    approved = as_reviewer.post(url, {"sha": head, "body": "Looks right."}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "approved" and approved.json()["approved_sha"] == head
    entry = audit.entries(action="change.approve").first()
    assert entry.source == "api" and entry.actor_name == reviewer.username
    [verdict] = as_reviewer.get(f"/api/v1/changes/{change.pk}/review").json()["reviews"]
    assert (verdict["reviewer"], verdict["by_policy"], verdict["verdict"]) == (reviewer.username, False, "approved")
    assert (verdict["sha"], verdict["body"], verdict["rule"]) == (head, "Looks right.", "")
    again = as_reviewer.post(url, {}, format="json")
    assert error_of(again, 409)["code"] == "invalid_state"


def test_request_changes_needs_a_body_and_sends_the_change_back(main, ana, reviewer):
    change = submitted(ana)
    as_reviewer = client_for(reviewer)
    url = f"/api/v1/changes/{change.pk}/request-changes"

    assert "Say what should change" in error_of(as_reviewer.post(url, {}, format="json"), 400, "body")["message"]
    assert "Say what should change" in error_of(as_reviewer.post(url, {"body": "  "}, format="json"), 400,
                                                "body")["message"]
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"

    sent_back = as_reviewer.post(url, {"body": "Name the column id.", "model": "customers", "line": 1,
                                       "sha": head_of(change)}, format="json")
    assert sent_back.status_code == 200, sent_back.content
    assert sent_back.json()["state"] == "changes_requested"
    [comment] = client_for(ana).get(f"/api/v1/changes/{change.pk}/comments").json()
    assert (comment["body"], comment["model"], comment["line"]) == ("Name the column id.", "customers", 1)
    assert comment["author"] == reviewer.username and comment["sha"] == head_of(change)
    assert audit.entries(action="change.request_changes").first().source == "api"


def test_only_reviewers_give_verdicts(main, ana, viewer):
    change = submitted(ana)
    for client in (client_for(ana), client_for(viewer)):
        assert client.post(f"/api/v1/changes/{change.pk}/approve", {}, format="json").status_code == 403


# --------------------------------------------------------------------------- comments


def test_a_comment_on_a_model_line_and_a_reply_make_a_thread(main, ana, reviewer, viewer):
    change = submitted(ana)
    url = f"/api/v1/changes/{change.pk}/comments"
    asked = client_for(reviewer).post(url, {"body": "Why 2?", "model": "customers", "line": 1}, format="json")
    assert asked.status_code == 201, asked.content
    question = asked.json()
    assert (question["model"], question["line"], question["reply_to"]) == ("customers", 1, None)
    assert question["sha"] == head_of(change)

    answered = client_for(ana).post(url, {"body": "The new numbering.", "reply_to": question["id"]}, format="json")
    assert answered.status_code == 201, answered.content
    reply = answered.json()
    assert reply["reply_to"] == question["id"] and (reply["model"], reply["line"]) == ("customers", 1)
    assert reply["author"] == "ana"

    thread = client_for(reviewer).get(url).json()
    assert [c["id"] for c in thread] == [question["id"], reply["id"]]
    assert audit.entries(action="change.comment").count() == 2

    error_of(client_for(reviewer).post(url, {"body": "Here", "line": 3}, format="json"), 400, "line")
    error_of(client_for(reviewer).post(url, {"body": ""}, format="json"), 400, "body")
    assert client_for(reviewer).post(url, {"body": "?", "reply_to": 999999}, format="json").status_code == 404
    assert client_for(viewer).post(url, {"body": "Hi"}, format="json").status_code == 403


def test_a_draft_is_hidden_from_reviewers_with_its_review_comments_and_builds(main, ana, reviewer):
    change = submitted(ana)
    build = CIBuild.objects.get(change=change)
    changes.withdraw_change(ana, change)  # a draft again: its author's only
    as_reviewer = client_for(reviewer)
    for url in (f"/api/v1/changes/{change.pk}/review", f"/api/v1/changes/{change.pk}/comments",
                f"/api/v1/changes/{change.pk}/ci-builds", f"/api/v1/ci-builds/{build.pk}",
                f"/api/v1/changes/{change.pk}/deployments"):
        assert as_reviewer.get(url).status_code == 404, url
    assert "no CI build" in as_reviewer.get(f"/api/v1/ci-builds/{build.pk}").json()["error"]["message"]
    assert client_for(ana).get(f"/api/v1/ci-builds/{build.pk}").status_code == 200
    assert as_reviewer.post(f"/api/v1/changes/{change.pk}/comments", {"body": "?"}, format="json").status_code == 404


# --------------------------------------------------------------------------- the review of one change, CI


def test_the_review_shows_the_diff_ci_results_and_the_policy_verdict_after_a_build(duck, ana, reviewer):
    change = submitted(ana, "Orders get a channel", {
        "orders": "{{ config(materialized='table') }}\nselect order_id, status, 'web' as channel\n"
                  "from {{ ref('stg_orders') }}\nwhere order_id < 3\n"}, {"orders": ORDERS_SPEC})
    url = f"/api/v1/changes/{change.pk}/review"

    before = client_for(reviewer).get(url).json()
    assert before["build"]["status"] == "queued" and before["policy"] is None
    assert before["can_review"] is True and before["is_author"] is False

    build = CIBuild.objects.get(change=change)
    assert ci.execute(build.pk) == BuildStatus.PASSED

    page = client_for(reviewer).get(url).json()
    assert page["change"]["id"] == change.pk and page["due"]
    [diff] = page["diffs"]
    assert diff["name"] == "orders" and diff["status"] == "modified"
    assert "+select order_id, status, 'web' as channel" in diff["sql_diff"]
    assert page["lineage"] == {"orders": ["order_count"]}

    ran = page["build"]
    assert ran["id"] == build.pk and ran["status"] == "passed" and ran["is_current"] and page["build_is_current"]
    assert ran["modified"] == ["orders"] and ran["downstream"] == ["order_count"]
    nodes = {n["name"]: n for n in ran["nodes"]}
    assert nodes["orders"]["rows"] == 2 and nodes["orders"]["production_rows"] == 3
    assert {k: nodes["orders"]["diff"][k] for k in ("key", "added", "removed", "changed")} == {
        "key": "order_id", "added": 0, "removed": 1, "changed": 0}
    assert nodes["unique_orders_order_id"]["status"] == "pass" and nodes["unique_orders_order_id"]["kind"] == "test"
    assert page["validation"] == {"errors": [], "breaking": []}
    assert [b["id"] for b in page["builds"]] == [build.pk]

    # The policy's verdict, rule by rule, and the approval it gave in its name.
    verdict = page["policy"]
    assert verdict == ran["policy"]
    assert verdict["eligible"] and verdict["approved"] and verdict["summary"].startswith("Approved by policy")
    assert {r["rule"] for r in verdict["rules"] if r["met"]} >= {"build_passed", "tests_passed", "fast_build"}
    [by_policy] = page["reviews"]
    assert by_policy["reviewer"] is None and by_policy["by_policy"] and by_policy["verdict"] == "approved"
    assert "auto-approval" in by_policy["rule"] and by_policy["sha"] == build.sha and by_policy["figures"]
    assert page["change"]["state"] == "approved"
    assert page["policy_settings"]["enabled"] is True and page["deployment"] is None

    # The build alone, and the change's builds, as the page polls them.
    assert client_for(reviewer).get(f"/api/v1/ci-builds/{build.pk}").json() == ran
    assert [b["id"] for b in client_for(ana).get(f"/api/v1/changes/{change.pk}/ci-builds").json()] == [build.pk]
    mine = client_for(ana).get(url).json()
    assert mine["is_author"] is True and mine["can_review"] is False and mine["can_comment"] is True


def test_building_again_answers_202_with_the_build_queued(main, ana, reviewer, viewer):
    change = submitted(ana)
    build = CIBuild.objects.get(change=change)
    CIBuild.objects.filter(pk=build.pk).update(status=BuildStatus.ERROR, message="The warehouse was away.")
    url = f"/api/v1/changes/{change.pk}/ci-builds"

    again = client_for(reviewer).post(url)
    assert again.status_code == 202, again.content
    body = again.json()
    assert body["id"] == build.pk and body["status"] == "queued" and body["message"] == ""
    assert body["sha"] == head_of(change) and body["nodes"] == [] and body["policy"] is None
    assert client_for(ana).post(url).status_code == 202  # its author too
    assert client_for(viewer).post(url).status_code == 403

    changes.abandon_change(ana, change)
    closed = client_for(reviewer).post(url)
    assert error_of(closed, 409)["code"] == "invalid_state"


def test_an_unknown_build_or_deployment_is_a_404(reviewer):
    assert client_for(reviewer).get("/api/v1/ci-builds/999999").status_code == 404
    assert client_for(reviewer).get("/api/v1/deployments/999999").status_code == 404
    assert client_for(reviewer).get("/api/v1/changes/999999/review").status_code == 404


# --------------------------------------------------------------------------- deployments


def test_deployments_of_a_change_are_listed_newest_first(main, ana, reviewer, viewer):
    change = submitted(ana)
    first = Deployment.objects.create(change=change, sha="a" * 40, target="analytics", status=DeployStatus.FAILED,
                                      message="orders: not deployed", nodes=[
                                          {"name": "orders", "kind": "model", "status": "error",
                                           "message": "not deployed", "seconds": 0.1, "rows": None}])
    second = Deployment.objects.create(change=change, sha="b" * 40, target="analytics",
                                       status=DeployStatus.DEPLOYED, seconds=1.5)

    listed = client_for(reviewer).get(f"/api/v1/changes/{change.pk}/deployments").json()
    assert [d["id"] for d in listed] == [second.pk, first.pk]
    assert listed[1]["status"] == "failed" and listed[1]["nodes"][0]["status"] == "error"
    one = client_for(ana).get(f"/api/v1/deployments/{second.pk}").json()
    assert one["status"] == "deployed" and one["target"] == "analytics" and one["change"] == change.pk
    assert client_for(reviewer).get(f"/api/v1/changes/{change.pk}/review").json()["deployment"]["id"] == second.pk
    # A viewer sees only their own changes, and so only their deployments.
    assert client_for(viewer).get(f"/api/v1/deployments/{second.pk}").status_code == 404


# --------------------------------------------------------------------------- the auto-approval policy


def test_reviewers_read_the_review_policy_and_only_admins_change_it(reviewer, admin, as_analyst):
    as_reviewer, as_admin = client_for(reviewer), client_for(admin)
    policy = as_reviewer.get("/api/v1/review-policy").json()
    assert policy["enabled"] is True and policy["max_build_seconds"] == 900 and policy["merge_on_approval"] is True
    assert as_analyst.get("/api/v1/review-policy").status_code == 403

    refused = as_reviewer.patch("/api/v1/review-policy", {"enabled": False}, format="json")
    assert error_of(refused, 403)["code"] == "permission_denied"
    assert "platform admin" in refused.json()["error"]["message"]

    changed = as_admin.patch("/api/v1/review-policy", {"enabled": False, "max_build_seconds": 120}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["enabled"] is False and changed.json()["max_build_seconds"] == 120
    as_admin.patch("/api/v1/review-policy", {"require_fast_build": False}, format="json")
    now = as_reviewer.get("/api/v1/review-policy").json()
    assert (now["enabled"], now["max_build_seconds"], now["require_fast_build"]) == (False, 120, False)
    assert now["require_tests_passed"] is True  # what was not sent stays

    entries = list(audit.entries(action="policy.update"))
    assert len(entries) == 2 and {e.source for e in entries} == {"api"}
    assert {e.actor_name for e in entries} == {admin.username}
    assert entries[1].details == {"before": {"enabled": True, "max_build_seconds": 900},
                                  "after": {"enabled": False, "max_build_seconds": 120}}


@pytest.mark.parametrize(("body", "field"), [
    ({"enabled": "perhaps"}, "enabled"),
    ({"max_build_seconds": 0}, "max_build_seconds"),
    ({"max_build_seconds": 86401}, "max_build_seconds"),
    ({"max_build_seconds": "soon"}, "max_build_seconds"),
    ({"colour": "red"}, "colour"),
    ({}, None),
])
def test_a_bad_review_policy_value_is_a_400_and_changes_nothing(admin, body, field):
    response = client_for(admin).patch("/api/v1/review-policy", body, format="json")
    error_of(response, 400, field)
    assert client_for(admin).get("/api/v1/review-policy").json()["max_build_seconds"] == 900
    assert not audit.entries(action="policy.update").exists()
