"""The reviewers' pages, on a real data-models repository (and a DuckDB warehouse where a CI build runs):
the review queue, a change's review page with its forms, the policy page, and the requested-changes
banner the analyst sees in the editor and on the change page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from models_service import changes, index
from models_service import repo as repo_module
from models_service.models import ChangeRequest, Review
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as DataTest
from models_service.repo import get_store
from portal.views.review import side_by_side
from runner import ci
from runner import warehouse as wh
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, RunOptions
from runner.engine.project import MappingSource, load_project
from runner.models import BuildStatus, CIBuild, ReviewPolicy
from tests.personas import make_user
from tests.runner.conftest import commit_to_main, duckdb_warehouse

pytestmark = pytest.mark.django_db

MAIN = {
    "models/stg_orders.sql": "{{ config(materialized='table') }}\n"
    "select * from (values (1, 'open'), (2, 'shipped'), (3, 'open')) as t(order_id, status)\n",
    "models/orders.sql": "{{ config(materialized='table') }}\nselect order_id, status from {{ ref('stg_orders') }}\n",
    "models/order_count.sql": "select count(*) as n from {{ ref('orders') }}\n",
    "models/customers.sql": "select 10 as customer_id\n",
    "models/orders.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n"
    "        data_tests: [unique, not_null]\n",
}
ORDERS_SPEC = ModelSpec("orders", columns=[ColumnSpec("order_id", tests=[DataTest("unique"), DataTest("not_null")])])


@pytest.fixture(autouse=True)
def repo(tmp_path, settings):
    """A fresh bare repository for each test, with main's models committed and indexed."""
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    commit_to_main(MAIN)
    index.rebuild(get_store())
    yield
    repo_module.forget_stores()


@pytest.fixture
def duck(tmp_path, settings):
    wh.forget_warehouses()
    yield duckdb_warehouse(tmp_path, settings)
    wh.forget_warehouses()


@pytest.fixture
def bob(db):
    return make_user("bob", "analyst", first_name="Bob", last_name="Builder")


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def submitted(author, title="Customers get an id", sql=None, specs=None) -> ChangeRequest:
    change = changes.open_change(author, title)
    for name, body in (sql or {"customers": "select 2 as customer_id\n"}).items():
        changes.save_model(author, change, name, body, (specs or {}).get(name, ModelSpec(name)))
    return changes.submit_change(author, change)


def submitted_days_ago(change: ChangeRequest, days: int) -> None:
    ChangeRequest.objects.filter(pk=change.pk).update(submitted_at=timezone.now() - dt.timedelta(days=days))


def deploy_main() -> None:
    """Production as it is before the change: main built into analytics."""
    from runner import preview

    store = get_store()
    files = preview.project_files(store, store.tip("refs/heads/main"))
    manifest = Compiler(load_project(MappingSource(files)), Target(schema="analytics", type=wh.get_warehouse().type)
                        ).compile()
    with wh.get_warehouse().build() as adapter:
        summary = Executor(manifest, adapter, RunOptions(threads=1)).run(set(manifest.nodes))
    assert summary.ok, [(r.name, r.message) for r in summary.results]


def run_build(change: ChangeRequest) -> CIBuild:
    build = CIBuild.objects.get(change=change, sha=ChangeRequest.objects.get(pk=change.pk).head_sha)
    ci.execute(build.pk)
    build.refresh_from_db()
    return build


def section(page: str, heading_id: str) -> str:
    """The HTML of the <section> whose heading has this id."""
    start = page.index(f'id="{heading_id}"')
    return page[start:page.index("</section>", start)]


# --------------------------------------------------------------------------- the queue


def test_the_queue_lists_submitted_changes_soonest_due_first_and_not_drafts(analyst, bob, reviewer):
    later = submitted(analyst, "Submitted yesterday")
    sooner = submitted(bob, "Submitted last week")
    submitted_days_ago(later, 1)
    submitted_days_ago(sooner, 6)
    changes.open_change(analyst, "Still a draft")
    page = text(client_for(reviewer).get("/review/"))
    assert "Submitted yesterday" in page and "Submitted last week" in page
    assert page.index("Submitted last week") < page.index("Submitted yesterday")
    assert "Still a draft" not in page
    assert f'href="/review/{sooner.pk}/"' in page
    assert "Bob Builder" in page  # the author
    assert "queued" in page and "not built yet" in page  # the CI build waits for a worker: no models known yet


def test_the_tabs_say_whose_turn_it_is_and_what_is_late(admin, analyst):
    own = submitted(admin, "The admin’s own change")
    fresh = submitted(analyst, "Fresh change")
    late = submitted(analyst, "Late change")
    submitted_days_ago(late, 10)
    client = client_for(admin)

    mine = text(client.get("/review/"))
    assert "Fresh change" in mine and "Late change" in mine
    assert "The admin’s own change" not in mine  # nobody reviews their own change
    assert 'aria-current="page">To review</a>' in mine

    everything = text(client.get("/review/?show=all"))
    assert all(c.title in everything for c in (own, fresh, late))

    overdue = text(client.get("/review/?show=overdue"))
    assert "Late change" in overdue and "Fresh change" not in overdue
    assert 'class="badge badge-overdue">overdue</span>' in overdue

    nothing = text(client.get("/review/?show=nonsense"))
    assert 'aria-current="page">To review</a>' in nothing  # an unknown tab is the default one


def test_an_empty_queue_says_so(reviewer):
    page = text(client_for(reviewer).get("/review/"))
    assert "Nothing waits for your review" in page


@pytest.mark.parametrize("persona", ["viewer", "analyst", "outsider"])
def test_roles_that_do_not_review_get_403_on_the_queue(persona, request):
    user = request.getfixturevalue(persona)
    assert client_for(user).get("/review/").status_code == 403


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get("/review/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_queue_does_not_run_a_query_per_change(analyst, reviewer, django_assert_max_num_queries):
    def add(n):
        for i in range(n):
            change = ChangeRequest.objects.create(
                title=f"c{n}-{i}", author=analyst, state="submitted", submitted_at=timezone.now(),
                branch=f"refs/heads/changes/x{n}-{i}", head_sha=f"{i:040d}")
            CIBuild.objects.create(change=change, sha=f"{i:040d}", schema="ci_x", status=BuildStatus.FAILED,
                                   modified=["orders"], validation={"breaking": [{"model": "orders"}]},
                                   policy={"eligible": False, "summary": "Waits for a reviewer: no."})

    client = client_for(reviewer)
    add(2)
    client.get("/review/")  # warm the session and the roles
    with CaptureQueriesContext(connection) as few:
        assert client.get("/review/").status_code == 200
    add(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = text(client.get("/review/"))
    assert page.count('href="/review/') >= 32
    assert re.search(r"waits for a person:</span>\s*<span class=\"policy-why\">no.</span>", page)
    assert "orders" in page


# --------------------------------------------------------------------------- the review page


def test_the_review_page_shows_the_diff_side_by_side_the_ci_results_the_policy_and_lineage(
        analyst, reviewer, duck):
    deploy_main()
    change = submitted(analyst, "Orders without duplicates?", {
        "orders": "{{ config(materialized='table') }}\nselect 1 as order_id, 'open' as status\n"
                  "union all select 1, 'x'\n"}, {"orders": ORDERS_SPEC})
    build = run_build(change)
    assert build.status == BuildStatus.FAILED

    response = client_for(reviewer).get(f"/review/{change.pk}/")
    assert response.status_code == 200
    page = text(response)
    # before | after, numbered, changed lines marked
    assert re.search(r'<td class="sbs-num">2</td>\s*<td class="sbs-mark sbs-del">−</td>\s*'
                     r'<td class="sbs-text sbs-del">select order_id, status from \{\{ ref\(&#x27;stg_orders&#x27;\) \}\}</td>',
                     page)
    assert re.search(r'<td class="sbs-text sbs-add">select 1 as order_id, &#x27;open&#x27; as status</td>', page)
    assert re.search(r'<td class="sbs-text sbs-ctx">\{\{ config', page)  # the unchanged first line on both sides
    # the CI results: the build, each model with its rows, the failing test with a sample of its rows
    ci_part = section(page, "ci-heading")
    assert "Failed" in ci_part and "unique_orders_order_id" in ci_part
    assert "Sample of the rows unique_orders_order_id found" in ci_part
    sample = ci_part.split("Sample of the rows unique_orders_order_id found", 1)[1].split("</table>", 1)[0]
    assert "<td>1</td>" in sample  # the duplicated order_id
    assert "order_count" in ci_part and "(downstream)" in ci_part
    assert "Build again" in ci_part
    # the policy's verdict, rule by rule
    policy = section(page, "policy-heading")
    assert "Waits for a reviewer" in policy
    assert re.search(r"Every error-severity test passed</td>\s*<td>on</td>\s*<td><span class=\"badge badge-bad\">"
                     r"not met", policy)
    assert "The build took under" in policy
    # what is downstream of the change
    downstream = section(page, "downstream-heading")
    assert re.search(r"<strong>orders</strong> →\s*order_count", downstream)
    # the reviewer's forms
    assert f'action="/review/{change.pk}/approve/"' in page
    assert f'name="sha" value="{build.sha}"' in page


def test_side_by_side_pairs_replaced_lines_and_leaves_out_far_unchanged_ones():
    before = "\n".join(f"line {i}" for i in range(1, 21))
    after = before.replace("line 10", "line ten").replace("line 20", "line 20\nline 21")
    rows = side_by_side(before, after, context=2)
    changed = [r for r in rows if r["kind"] == "change"]
    assert changed[0]["left"] == {"num": 10, "text": "line 10", "kind": "del"}
    assert changed[0]["right"] == {"num": 10, "text": "line ten", "kind": "add"}
    assert changed[1]["left"]["kind"] == "empty" and changed[1]["right"]["text"] == "line 21"
    assert rows[0] == {"kind": "gap", "hidden": 7}  # lines 1-7 are far from any change
    assert side_by_side("same\n", "same\n") == []


def test_a_draft_is_hidden_from_reviewers(analyst, reviewer, viewer):
    draft = changes.open_change(analyst, "Not yet")
    assert client_for(reviewer).get(f"/review/{draft.pk}/").status_code == 404
    assert client_for(viewer).get(f"/review/{draft.pk}/").status_code == 404
    assert client_for(analyst).get(f"/review/{draft.pk}/").status_code == 200
    assert client_for(reviewer).get("/review/999999/").status_code == 404


def test_a_reviewer_approves_through_the_page_and_a_newer_save_withdraws_it(analyst, reviewer):
    change = submitted(analyst)
    head = ChangeRequest.objects.get(pk=change.pk).head_sha
    client = client_for(reviewer)
    response = client.post(f"/review/{change.pk}/approve/", {"sha": head, "body": "Looks right."}, follow=True)
    change.refresh_from_db()
    assert change.state == "approved" and change.approved_sha == head
    page = text(response)
    assert "Approved. The change goes live" in page and "Looks right." in page
    assert Review.objects.get(change=change).reviewer == reviewer

    changes.save_model(analyst, change, "customers", "select 3 as customer_id\n", ModelSpec("customers"))
    reviews = section(text(client.get(f"/review/{change.pk}/")), "reviews-heading")
    assert "withdrawn by a newer save" in reviews


def test_an_approval_of_an_older_version_is_refused_with_a_message(analyst, reviewer):
    change = submitted(analyst)
    response = client_for(reviewer).post(f"/review/{change.pk}/approve/", {"sha": "0" * 40}, follow=True)
    assert "A newer version of this change was saved" in text(response)
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"


def test_the_author_cannot_approve_their_own_change_and_is_told_why(admin):
    change = submitted(admin, "The admin’s own change")
    client = client_for(admin)
    page = text(client.get(f"/review/{change.pk}/"))
    assert "another reviewer has to approve your change" in page
    assert "/approve/" not in page and "Request changes" not in page

    head = ChangeRequest.objects.get(pk=change.pk).head_sha
    response = client.post(f"/review/{change.pk}/approve/", {"sha": head})
    assert response.status_code == 302 and response["Location"] == f"/review/{change.pk}/"
    page = text(client.get(response["Location"]))
    assert "You cannot review your own change: another reviewer has to approve it." in page
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"
    assert not Review.objects.exists()


def test_requesting_changes_without_words_shows_the_error_and_keeps_what_was_typed(analyst, reviewer):
    change = submitted(analyst)
    client = client_for(reviewer)
    response = client.post(f"/review/{change.pk}/request-changes/", {"body": "   ", "model": "customers", "line": "4"})
    assert response.status_code == 400
    page = text(response)
    assert "Say what should change, so the author knows what to do." in page
    assert '<option value="customers" selected>' in page and 'value="4"' in page

    too_long = "Rename the column. " + "x" * 10_000
    response = client.post(f"/review/{change.pk}/request-changes/", {"body": too_long})
    assert response.status_code == 400
    assert "at most 10,000 characters" in text(response) and too_long in text(response)
    assert ChangeRequest.objects.get(pk=change.pk).state == "submitted"


def test_requesting_changes_sends_the_change_back_and_the_author_sees_it_everywhere(analyst, reviewer):
    change = submitted(analyst)
    response = client_for(reviewer).post(f"/review/{change.pk}/request-changes/",
                                         {"body": "Call the column id.", "model": "customers", "line": "1"})
    assert response.status_code == 302
    assert ChangeRequest.objects.get(pk=change.pk).state == "changes_requested"
    author = client_for(analyst)

    editor = text(author.get(f"/editor/?change={change.pk}&model=customers"))
    banner = editor.split('class="banner banner-request"', 1)[1].split("</section>", 1)[0]
    assert "Changes requested by reviewer on customers, line 1" in banner
    assert "Call the column id." in banner
    assert editor.index("banner-request") < editor.index('id="sql-editor"')  # above the editor

    detail = text(author.get(f"/changes/{change.pk}/"))
    box = section(detail, "review-box-heading")
    assert "Call the column id." in box and "customers, line 1" in box
    assert f'href="/review/{change.pk}/"' in box and "CI build" in box

    review_page = text(author.get(f"/review/{change.pk}/"))
    assert "Changes requested by reviewer" in review_page


def test_the_editor_shows_no_banner_without_a_request(analyst):
    change = changes.open_change(analyst, "Fresh")
    assert "banner-request" not in text(client_for(analyst).get(f"/editor/?change={change.pk}"))


def test_a_comment_on_a_model_line_appears_in_its_thread_with_replies(analyst, reviewer):
    change = submitted(analyst)
    response = client_for(reviewer).post(f"/review/{change.pk}/comment/",
                                         {"body": "Why 2 and not 10?", "model": "customers", "line": "1"})
    assert response.status_code == 302 and re.search(r"#comment-\d+$", response["Location"])
    root = int(response["Location"].rsplit("-", 1)[1])
    client_for(analyst).post(f"/review/{change.pk}/comment/", {"body": "New customers start at 2.",
                                                               "reply_to": str(root)})
    client_for(analyst).post(f"/review/{change.pk}/comment/", {"body": "A general remark."})

    page = text(client_for(reviewer).get(f"/review/{change.pk}/"))
    model = page.split('id="model-customers"', 1)[1].split("</article>\n    ", 1)[0]
    thread = model.split('class="thread"', 1)[1].split("</li>", 1)[0]
    assert 'href="#sql-customers-L1">customers, line 1</a>' in thread
    assert "Why 2 and not 10?" in thread and "New customers start at 2." in thread
    assert thread.index("Why 2") < thread.index("New customers")
    assert 'id="sql-customers-L1"' in page  # the line the comment links to
    general = section(page, "comments-heading")
    assert "A general remark." in general and "Why 2 and not 10?" not in general


def test_a_comment_on_a_line_without_a_model_is_refused_with_a_message(analyst, reviewer):
    change = submitted(analyst)
    response = client_for(reviewer).post(f"/review/{change.pk}/comment/", {"body": "Hm", "line": "3"}, follow=True)
    assert "names the model" in text(response)


def test_a_viewer_cannot_comment_or_approve(analyst, viewer):
    change = submitted(analyst)
    client = client_for(viewer)
    for verb in ("approve", "request-changes", "comment"):
        assert client.post(f"/review/{change.pk}/{verb}/", {"body": "x"}).status_code == 403, verb


def test_sql_comments_and_titles_with_script_are_escaped(analyst, reviewer):
    change = submitted(analyst, "<script>alert('title')</script>",
                       {"customers": "select 2 as customer_id -- <script>alert('sql')</script>\n"})
    client = client_for(reviewer)
    client.post(f"/review/{change.pk}/comment/", {"body": "<script>alert('comment')</script>", "model": "customers"})
    page = text(client.get(f"/review/{change.pk}/"))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;sql&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;comment&#x27;)" in page
    assert "&lt;script&gt;alert(&#x27;title&#x27;)" in page
    assert "<script>alert" not in text(client.get("/review/?show=all"))


def test_build_again_queues_a_build_that_had_an_error(analyst, reviewer):
    change = submitted(analyst)
    CIBuild.objects.filter(change=change).update(status=BuildStatus.ERROR, message="The warehouse was away.")
    response = client_for(reviewer).post(f"/review/{change.pk}/rebuild/", follow=True)
    assert "queued to be built again" in text(response)
    assert CIBuild.objects.get(change=change).status == BuildStatus.QUEUED


# --------------------------------------------------------------------------- the policy page


def test_an_admin_changes_the_auto_approval_policy(admin, reviewer):
    client = client_for(admin)
    page = text(client.get("/review/policy/"))
    assert "Nothing downstream breaks" in page and "No column that a downstream model reads" in page
    assert 'value="15"' in page  # 15 minutes by default
    response = client.post("/review/policy/", {"max_build_minutes": "5", "require_build_passed": "on",
                                               "merge_on_approval": "on"}, follow=True)
    assert "policy is saved" in text(response)
    policy = ReviewPolicy.current()
    assert not policy.enabled and policy.max_build_seconds == 300 and policy.require_build_passed
    assert not policy.require_tests_passed and policy.merge_on_approval

    bad = client.post("/review/policy/", {"max_build_minutes": "0"})
    assert bad.status_code == 400 and ReviewPolicy.current().max_build_seconds == 300
    assert client_for(reviewer).get("/review/policy/").status_code == 403
