"""Issue 6 end to end through the service functions and the tasks' bodies, on DuckDB and PostgreSQL:
a submitted change is built in `ci_<id>` with deferral, judged by the policy, merged and deployed."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from models_service import audit, changes, review
from models_service.errors import InvalidState
from models_service.models import ChangeRequest, Review
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from models_service.repo import get_store
from runner import ci, deploy, tasks
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, RunOptions
from runner.engine.project import MappingSource, load_project
from runner.models import BuildStatus, CIBuild, Deployment, DeployStatus, ReviewPolicy
from tests.personas import make_user
from tests.runner.conftest import commit_to_main as _commit


def commit_to_main(files: dict[str, str]) -> str:
    """Main's models, indexed as a merge or the sync task would index them."""
    from models_service import index

    sha = _commit(files)
    index.rebuild(get_store())
    return sha

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


def deploy_main(w) -> None:
    """Production as it is before the change: main built into analytics."""
    from runner import preview
    from runner import warehouse as wh

    store = get_store()
    files = preview.project_files(store, store.tip("refs/heads/main"))
    manifest = Compiler(load_project(MappingSource(files)), Target(schema="analytics", type=wh.get_warehouse().type)
                        ).compile()
    with wh.get_warehouse().build() as adapter:
        summary = Executor(manifest, adapter, RunOptions(threads=1)).run(set(manifest.nodes))
    assert summary.ok, [(r.name, r.message) for r in summary.results]


@pytest.fixture
def people(db):
    return make_user("ana", "analyst"), make_user("rita", "reviewer")


def submitted(analyst, sql: dict[str, str], specs: dict[str, ModelSpec] | None = None) -> ChangeRequest:
    change = changes.open_change(analyst, "Orders get a channel")
    for name, text in sql.items():
        changes.save_model(analyst, change, name, text, (specs or {}).get(name, ModelSpec(name)))
    change = changes.submit_change(analyst, change)
    return change


def build_of(change: ChangeRequest) -> CIBuild:
    build = CIBuild.objects.get(change=change, sha=ChangeRequest.objects.get(pk=change.pk).head_sha)
    ci.execute(build.pk)
    build.refresh_from_db()
    return build


@pytest.mark.django_db(transaction=True)
def test_a_change_is_built_in_ci_approved_by_policy_merged_and_deployed(people, warehouse):
    analyst, _ = people
    commit_to_main(MAIN)
    deploy_main(warehouse)
    change = submitted(analyst, {
        "orders": "{{ config(materialized='table') }}\nselect order_id, status, 'web' as channel\n"
                  "from {{ ref('stg_orders') }}\nwhere order_id < 3\n"}, {"orders": ORDERS_SPEC})

    build = build_of(change)
    assert build.status == BuildStatus.PASSED, build.message
    assert build.modified == ["orders"] and build.downstream == ["order_count"]
    by_name = {n["name"]: n for n in build.nodes}
    assert set(by_name) >= {"orders", "order_count", "unique_orders_order_id", "not_null_orders_order_id"}
    assert "stg_orders" not in by_name  # unmodified parents are read from production, not rebuilt
    assert by_name["orders"]["rows"] == 2 and by_name["orders"]["production_rows"] == 3
    assert by_name["orders"]["diff"]["key"] == "order_id"
    assert by_name["orders"]["diff"]["removed"] == 1 and by_name["orders"]["diff"]["added"] == 0
    schema = ci.ci_schema(change.pk)
    assert warehouse.rows(f"select channel from {schema}.orders order by order_id") == [("web",), ("web",)]
    assert warehouse.rows(f"select n from {schema}.order_count") == [(2,)]
    assert warehouse.rows("select count(*) from analytics.orders") == [(3,)]  # production untouched

    # the policy approved it, with its reason
    assert build.policy["eligible"] and build.policy["approved"], build.policy
    change.refresh_from_db()
    assert change.state == "approved" and change.approved_sha == build.sha
    verdict = Review.objects.get(change=change)
    assert verdict.reviewer is None and "fast_build" in verdict.rule and verdict.figures["tests_passed"]
    entry = audit.entries(action="change.approve").first()
    assert entry.source == "policy" and entry.details["rule"] == verdict.rule

    # merge, then the deploy it queues
    assert tasks.merge_approved(change.pk) == "merged"
    change.refresh_from_db()
    deployment = Deployment.objects.get(change=change)
    assert deployment.sha == change.merged_sha and deployment.status == DeployStatus.QUEUED
    assert deploy.execute(deployment.pk) == DeployStatus.DEPLOYED
    assert warehouse.rows("select count(*), min(channel) from analytics.orders") == [(2, "web")]
    assert warehouse.rows("select n from analytics.order_count") == [(2,)]
    # delivered again: the same deployment, nothing done twice
    assert deploy.request_deploy(change).pk == deployment.pk
    assert deploy.execute(deployment.pk) == DeployStatus.DEPLOYED
    # the CI schema goes with the change
    ci.drop_schema(change.pk)
    assert warehouse.rows(
        f"select count(*) from information_schema.tables where table_schema = '{schema}'") == [(0,)]


@pytest.mark.django_db(transaction=True)
def test_one_failing_model_skips_its_downstream_builds_its_siblings_and_waits_for_a_person(people, duck):
    analyst, _ = people
    commit_to_main(MAIN)
    deploy_main(duck)
    change = submitted(analyst, {
        "orders": "{{ config(materialized='table') }}\nselect order_id, no_such_column\nfrom {{ ref('stg_orders') }}\n",
        "customers": "{{ config(materialized='table') }}\nselect 11 as customer_id\n",
    })
    build = build_of(change)
    assert build.status == BuildStatus.FAILED
    status = {n["name"]: n["status"] for n in build.nodes}
    assert status["orders"] == "error" and status["order_count"] == "skipped" and status["customers"] == "success"
    assert not build.policy["eligible"]
    missed = {r["rule"] for r in build.policy["rules"] if r["on"] and not r["met"]}
    assert "build_passed" in missed and "tests_passed" not in missed
    assert "Waits for a reviewer" in build.policy["summary"]
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"


@pytest.mark.django_db(transaction=True)
def test_a_failing_test_blocks_the_deploy_and_the_old_table_keeps_serving(people, duck):
    analyst, reviewer = people
    commit_to_main(MAIN)
    deploy_main(duck)
    ReviewPolicy.objects.update_or_create(pk=1, defaults={"enabled": False})
    change = submitted(analyst, {"orders": "{{ config(materialized='table') }}\n"
                                           "select 1 as order_id, 'open' as status union all select 1, 'x'\n"},
                       {"orders": ORDERS_SPEC})
    build = build_of(change)
    assert build.status == BuildStatus.FAILED and "Auto-approval is switched off" in build.policy["summary"]
    # a reviewer approves anyway; the deploy's gate still refuses the failing model
    review.approve_change(reviewer, change, build.sha)
    tasks.merge_approved(change.pk)
    deployment = Deployment.objects.get(change=change)
    assert deploy.execute(deployment.pk) == DeployStatus.FAILED
    deployment.refresh_from_db()
    assert "not deployed" in deployment.message and "unique_orders_order_id" in deployment.message
    assert duck.rows("select count(*) from analytics.orders") == [(3,)]
    assert {n["name"]: n["status"] for n in deployment.nodes}["order_count"] == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_new_save_makes_the_build_stale_and_builds_the_new_head(people, duck):
    analyst, _ = people
    commit_to_main(MAIN)
    change = submitted(analyst, {"customers": "select 1 as customer_id\n"})
    first = CIBuild.objects.get(change=change)
    changes.save_model(analyst, change, "customers", "select 2 as customer_id\n", ModelSpec("customers"))
    first.refresh_from_db()
    assert first.status == BuildStatus.STALE
    head = ChangeRequest.objects.get(pk=change.pk).head_sha
    assert CIBuild.objects.get(change=change, sha=head).status == BuildStatus.QUEUED


@pytest.mark.django_db
def test_nobody_approves_their_own_change_and_a_new_save_withdraws_an_approval(people, duck):
    analyst, reviewer = people
    commit_to_main(MAIN)
    admin = make_user("adam", "admin", "analyst")
    change = changes.open_change(admin, "Mine")
    changes.save_model(admin, change, "customers", "select 1 as customer_id\n", ModelSpec("customers"))
    changes.submit_change(admin, change)
    with pytest.raises(PermissionDenied) as refused:
        review.approve_change(admin, change)
    assert "your own change" in str(refused.value)

    change = submitted(analyst, {"customers": "select 2 as customer_id\n"})
    head = ChangeRequest.objects.get(pk=change.pk).head_sha
    with pytest.raises(InvalidState):
        review.approve_change(reviewer, change, "0" * 40)  # not the version there now
    review.approve_change(reviewer, change, head)
    assert ChangeRequest.objects.get(pk=change.pk).approved_sha == head
    changes.save_model(analyst, change, "customers", "select 3 as customer_id\n", ModelSpec("customers"))
    change.refresh_from_db()
    assert change.state == "submitted" and change.approved_sha == ""
    assert audit.entries(action="change.approval_withdrawn").count() == 1


@pytest.mark.django_db
def test_request_changes_needs_words_and_sends_the_change_back(people, duck):
    analyst, reviewer = people
    commit_to_main(MAIN)
    change = submitted(analyst, {"customers": "select 2 as customer_id\n"})
    with pytest.raises(Exception, match="Say what should change"):
        review.request_changes(reviewer, change, "  ")
    review.request_changes(reviewer, change, "Please name the column id.", model="customers", line=1)
    change.refresh_from_db()
    assert change.state == "changes_requested"
    assert review.latest_request(change).body == "Please name the column id."
    comment = review.comments_of(change)[0]
    assert (comment.model, comment.line) == ("customers", 1)
    reply = review.add_comment(analyst, change, "Done.", reply_to=comment.pk)
    assert reply.reply_to_id == comment.pk and reply.model == "customers"


@pytest.mark.django_db
def test_each_move_queues_its_work_after_commit(people, duck, django_capture_on_commit_callbacks, monkeypatch):
    """submit -> CI build; approve -> merge; merge -> deploy and drop ci_<id>; abandon -> drop ci_<id>."""
    analyst, reviewer = people
    commit_to_main(MAIN)
    queued: list[tuple[str, int]] = []
    for name in ("ci_build", "merge_approved", "deploy", "drop_ci_schema"):
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda pk, name=name: queued.append((name, pk)))

    with django_capture_on_commit_callbacks(execute=True):
        change = submitted(analyst, {"customers": "select 2 as customer_id\n"})
    build = CIBuild.objects.get(change=change)
    assert queued == [("ci_build", build.pk)]
    with django_capture_on_commit_callbacks(execute=True):
        review.approve_change(reviewer, change)
    assert queued[-1] == ("merge_approved", change.pk)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.merge_approved(change.pk)
    deployment = Deployment.objects.get(change=change)
    assert queued[-2:] == [("deploy", deployment.pk), ("drop_ci_schema", change.pk)]

    other = submitted(analyst, {"customers": "select 3 as customer_id\n"})
    with django_capture_on_commit_callbacks(execute=True):
        changes.abandon_change(analyst, other)
    assert queued[-1] == ("drop_ci_schema", other.pk)
