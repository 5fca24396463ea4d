"""The change pages, on a real data-models repository: my changes, a change, the model form, history."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from models_service import changes, merging, reading
from models_service import project_files as pf
from models_service import repo as repo_module
from models_service.models import ChangeRequest
from tests.models_service.conftest import approve, spec
from tests.personas import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def repo(tmp_path, settings):
    """A fresh bare repository for each test (created on first use)."""
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield
    repo_module.forget_stores()


@pytest.fixture
def bob(db):
    return make_user("bob", "analyst", first_name="Bob", last_name="Builder")


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def live_model(author, reviewer, name="orders", sql="select 1 as id\n", **kw):
    """A model on main, the way it gets there: a change saved, submitted, approved and merged."""
    change = changes.open_change(author, f"Add {name}")
    changes.save_model(author, change, name, sql, kw.pop("model_spec", None) or spec(name, "Orders", ("id",)))
    changes.submit_change(author, change)
    approve(change)
    merging.merge_change(reviewer, change)
    return change


def edit_post(sql, base_sha, description="", message="", columns=(), **extra):
    data = {
        "sql": sql,
        "description": description,
        "message": message,
        "base_sha": base_sha,
        "col-TOTAL_FORMS": str(len(columns)),
        "col-INITIAL_FORMS": "0",
        "col-MIN_NUM_FORMS": "0",
        "col-MAX_NUM_FORMS": "1000",
        **extra,
    }
    for i, column in enumerate(columns):
        for key, value in column.items():
            if value is not False:
                data[f"col-{i}-{key}"] = "on" if value is True else value
    return data


def text(response) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------- my changes


def test_my_changes_lists_ones_own_changes_and_not_others_drafts(analyst, bob):
    mine = changes.open_change(analyst, "Monthly revenue")
    changes.save_model(analyst, mine, "revenue", "select 1", spec("revenue"))
    changes.open_change(bob, "Bob's secret draft")
    page = text(client_for(analyst).get("/changes/"))
    assert "Monthly revenue" in page and "revenue" in page and "Draft" in page
    assert "secret draft" not in page
    assert 'action="/changes/new/"' in page


def test_the_tabs_split_open_merged_and_abandoned(analyst, reviewer):
    live_model(analyst, reviewer)
    gone = changes.open_change(analyst, "Given up")
    changes.abandon_change(analyst, gone)
    client = client_for(analyst)
    assert "Add orders" not in text(client.get("/changes/"))
    assert "Add orders" in text(client.get("/changes/?state=merged"))
    abandoned = text(client.get("/changes/?state=abandoned"))
    assert "Given up" in abandoned and "Add orders" not in abandoned


def test_a_reviewer_lists_submitted_changes_but_not_drafts(analyst, reviewer, bob):
    submitted = changes.open_change(bob, "Ready for review")
    changes.save_model(bob, submitted, "x", "select 1", spec("x"))
    changes.submit_change(bob, submitted)
    changes.open_change(analyst, "Still a draft")
    page = text(client_for(reviewer).get("/changes/"))
    assert "Ready for review" in page and "Still a draft" not in page
    assert "Builder" in page  # the author's name in the "all" view


def test_the_nav_links_my_changes_for_analysts(analyst):
    page = text(client_for(analyst).get("/"))
    assert '<a href="/changes/">My changes</a>' in page


def test_the_list_does_not_run_a_query_per_change(analyst, django_assert_max_num_queries):
    def add(n):
        for i in range(n):
            ChangeRequest.objects.create(title=f"c{i}", author=analyst, branch=f"refs/heads/changes/x{i}-{n}")

    client = client_for(analyst)
    add(2)
    client.get("/changes/")  # warm the session and the roles
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get("/changes/").status_code == 200
    add(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = text(client.get("/changes/"))
    assert page.count('href="/changes/') >= 32


def test_creating_a_change_goes_to_its_page(analyst):
    client = client_for(analyst)
    response = client.post("/changes/new/", {"title": "  Add   churn  ", "description": "For the board"})
    change = ChangeRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/changes/{change.pk}/"
    assert change.title == "Add churn" and change.author == analyst
    page = text(client.get(response["Location"]))
    assert "Add churn" in page and "For the board" in page and "Draft" in page
    assert "changes/" + str(change.pk) + "-" not in page  # the branch stays out of sight
    assert "commit" not in page.lower()


def test_a_change_without_a_title_is_refused_with_the_form(analyst):
    response = client_for(analyst).post("/changes/new/", {"title": "  "})
    assert response.status_code == 400 and "This field is required" in text(response)
    assert not ChangeRequest.objects.exists()


# --------------------------------------------------------------------------- one change


def test_someone_elses_draft_is_a_404(analyst, bob, reviewer):
    draft = changes.open_change(bob, "Bob's draft")
    assert client_for(analyst).get(f"/changes/{draft.pk}/").status_code == 404
    assert client_for(reviewer).get(f"/changes/{draft.pk}/").status_code == 404
    assert client_for(analyst).post(f"/changes/{draft.pk}/submit/").status_code == 404
    assert client_for(analyst).get(f"/changes/{draft.pk}/models/new/").status_code == 404
    assert client_for(bob).get(f"/changes/{draft.pk}/").status_code == 200


def test_a_viewer_cannot_post(analyst, viewer, reviewer):
    live_model(analyst, reviewer)
    change = changes.open_change(analyst, "x")
    client = client_for(viewer)
    for url in (
        "/changes/new/",
        f"/changes/{change.pk}/submit/",
        f"/changes/{change.pk}/models/new/",
        "/models/orders/edit/",
        "/models/orders/revert/",
    ):
        assert client.post(url, {"title": "t"}).status_code == 403, url
    assert client.get(f"/changes/{change.pk}/").status_code == 403
    assert client.get("/models/orders/history/").status_code == 200  # reading the history is for everyone


def test_the_change_page_shows_each_model_with_its_diffs_and_the_saves(analyst, reviewer):
    live_model(analyst, reviewer)
    change = changes.open_change(analyst, "More columns")
    changes.save_model(analyst, change, "orders", "select 1 as id, 2 as amount\n",
                       spec("orders", "Orders", ("id", "amount")), message="Add the amount")
    page = text(client_for(analyst).get(f"/changes/{change.pk}/"))
    assert 'id="model-orders"' in page and "Changed" in page
    assert re.search(r'class="diff-del">.*?select 1 as id</td>', page, re.S)
    assert re.search(r'class="diff-add">.*?select 1 as id, 2 as amount</td>', page, re.S)
    assert "name: amount" in page  # the properties diff
    saves = page.split('id="saves-heading"', 1)[1]
    assert re.search(r"<td>analyst</td>\s*<td>Add the amount</td>", saves)  # who saved, and why
    assert f'action="/changes/{change.pk}/submit/"' in page
    assert "/withdraw/" not in page  # a draft is not under review


def test_submit_and_withdraw_move_the_state(analyst):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    client = client_for(analyst)
    response = client.post(f"/changes/{change.pk}/submit/", follow=True)
    change.refresh_from_db()
    assert change.state == "submitted" and "Submitted for review" in text(response)
    assert f'action="/changes/{change.pk}/withdraw/"' in text(response)
    client.post(f"/changes/{change.pk}/withdraw/")
    change.refresh_from_db()
    assert change.state == "draft"
    client.post(f"/changes/{change.pk}/abandon/")
    change.refresh_from_db()
    assert change.state == "abandoned"


def test_a_refused_move_is_a_message_not_an_error(analyst):
    change = changes.open_change(analyst, "empty")
    response = client_for(analyst).post(f"/changes/{change.pk}/submit/", follow=True)
    assert response.status_code == 200
    assert "There is nothing to review yet" in text(response)
    change.refresh_from_db()
    assert change.state == "draft"
    response = client_for(analyst).post(f"/changes/{change.pk}/withdraw/", follow=True)
    assert response.status_code == 200 and "cannot be withdrawn" in text(response)


def test_a_reviewer_cannot_submit_anothers_change(analyst, reviewer):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.submit_change(analyst, change)
    client = client_for(reviewer)
    assert client.get(f"/changes/{change.pk}/").status_code == 200
    assert "/withdraw/" not in text(client.get(f"/changes/{change.pk}/"))
    assert client.post(f"/changes/{change.pk}/withdraw/").status_code == 403


def test_deleting_a_model_in_a_change(analyst, reviewer):
    live_model(analyst, reviewer)
    change = changes.open_change(analyst, "Drop orders")
    client = client_for(analyst)
    client.get(f"/changes/{change.pk}/?edit=orders")  # the "edit by name" box
    response = client.post(f"/changes/{change.pk}/models/orders/delete/", {"base_sha": change.head_sha})
    assert response.status_code == 302
    assert [d.status for d in reading.change_diff(analyst, change)] == ["deleted"]
    again = client.post(f"/changes/{change.pk}/models/orders/delete/", follow=True)
    assert "There is no model orders" in text(again)


def test_bring_in_the_latest_asks_whose_version_to_keep_on_a_conflict(analyst, bob, reviewer):
    live_model(analyst, reviewer)
    mine = changes.open_change(analyst, "Mine")
    changes.save_model(analyst, mine, "orders", "select 2 as id\n", spec("orders", "Orders", ("id",)))
    live_model(bob, reviewer, "orders", "select 3 as id\n")  # bob's edit goes live first
    mine.refresh_from_db()
    assert mine.needs_update
    client = client_for(analyst)
    page = text(client.get(f"/changes/{mine.pk}/"))
    assert "Bring in the latest" in page
    response = client.post(f"/changes/{mine.pk}/update/")
    assert response.status_code == 409
    page = text(response)
    assert 'name="keep:orders" value="mine"' in page and "both changed these lines" in page
    response = client.post(f"/changes/{mine.pk}/update/", {"keep:orders": "mine"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert not mine.needs_update
    assert reading.get_model(analyst, "orders", change=mine).sql == "select 2 as id\n"


# --------------------------------------------------------------------------- the model form


def test_saving_a_model_through_the_form_is_a_save_by_the_analyst(analyst, reviewer):
    live_model(analyst, reviewer, model_spec=pf.ModelSpec(name="orders", columns=[
        pf.ColumnSpec("id", tests=[pf.TestSpec("unique"), pf.TestSpec("accepted_values", {"values": [1, 2]})])]))
    change = changes.open_change(analyst, "Edit orders")
    client = client_for(analyst)
    form = client.get(f"/changes/{change.pk}/models/orders/edit/")
    assert form.status_code == 200
    page = text(form)
    assert "select 1 as id" in page and f'value="{change.head_sha}"' in page
    assert "Also tested: accepted_values" in page
    response = client.post(
        f"/changes/{change.pk}/models/orders/edit/",
        edit_post("select 1 as id, 2 as amount", change.head_sha, "All orders", "Add amount",
                  columns=[{"name": "id", "not_null": True}, {"name": "amount", "description": "In euros"}]),
    )
    assert response.status_code == 302, text(response)
    saves = reading.change_commits(analyst, change)
    assert [(s["author"], s["email"], s["message"]) for s in saves] == [
        ("analyst", "analyst@example.com", "Add amount")]
    saved = reading.get_model(analyst, "orders", change=change)
    assert saved.sql.startswith("select 1 as id, 2 as amount")
    assert saved.spec.description == "All orders"
    tests = {c.name: sorted(t.kind for t in c.tests) for c in saved.spec.columns}
    assert tests == {"id": ["accepted_values", "not_null"], "amount": []}  # unique unticked, the rest kept
    assert saved.spec.columns[1].description == "In euros"


def test_a_new_model_through_the_form(analyst):
    change = changes.open_change(analyst, "New")
    client = client_for(analyst)
    assert client.get(f"/changes/{change.pk}/models/new/").status_code == 200
    data = edit_post("select 1 as x", change.head_sha, name="daily_sales", folder="marts/sales",
                     columns=[{"name": "x", "unique": True}])
    assert client.post(f"/changes/{change.pk}/models/new/", data).status_code == 302
    saved = reading.get_model(analyst, "daily_sales", change=change)
    assert saved.sql_path == "models/marts/sales/daily_sales.sql"
    change.refresh_from_db()
    again = client.post(f"/changes/{change.pk}/models/new/", {**data, "base_sha": change.head_sha})
    assert again.status_code == 400 and "exists already" in text(again)
    bad = client.post(f"/changes/{change.pk}/models/new/", {**data, "name": "no spaces"})
    assert bad.status_code == 400 and "letters, digits and underscores" in text(bad)


def test_a_conflicting_save_keeps_the_text_and_shows_the_other_version(analyst, reviewer, admin):
    live_model(analyst, reviewer)
    change = changes.open_change(analyst, "Edit orders")
    loaded = change.head_sha
    # A platform admin saves the same model in the analyst's change meanwhile.
    changes.save_model(admin, change, "orders", "select 42 as id -- admin's\n", spec("orders"),
                       message="Fix the id")
    client = client_for(analyst)
    url = f"/changes/{change.pk}/models/orders/edit/"
    mine = "select 7 as id -- my careful work"
    response = client.post(url, edit_post(mine, loaded, columns=[{"name": "id"}]))
    assert response.status_code == 409
    page = text(response)
    assert mine in page  # nothing lost
    assert "select 42 as id -- admin&#x27;s" in page  # their version, shown (escaped)
    assert "Fix the id" in page
    assert reading.get_model(analyst, "orders", change=change).sql.startswith("select 42")
    # The form now carries the version the analyst has seen: saving again goes through.
    base = re.search(r'name="base_sha" value="([0-9a-f]{40})"', page).group(1)
    assert base != loaded
    assert client.post(url, edit_post(mine, base, columns=[{"name": "id"}])).status_code == 302
    assert reading.get_model(analyst, "orders", change=change).sql.startswith(mine)


def test_the_models_of_a_merged_change_cannot_be_edited(analyst, reviewer):
    merged = live_model(analyst, reviewer, "other")
    response = client_for(analyst).get(f"/changes/{merged.pk}/models/other/edit/", follow=True)
    assert "This change is merged: open a new change to edit models." in text(response)
    page = text(client_for(analyst).get(f"/changes/{merged.pk}/"))
    assert "/submit/" not in page and "/abandon/" not in page and "Add a model" not in page


def test_editing_a_model_that_is_not_there_says_so(analyst):
    change = changes.open_change(analyst, "x")
    page = text(client_for(analyst).get(f"/changes/{change.pk}/?edit=nothing_here", follow=True))
    assert "There is no model nothing_here in this change" in page
    page = text(client_for(analyst).get(f"/changes/{change.pk}/?edit=no/such", follow=True))
    assert "is not a model name" in page


def test_sql_with_a_script_tag_is_escaped_everywhere(analyst, reviewer):
    evil = "select '<script>alert(1)</script>' as x\n"
    live_model(analyst, reviewer, "orders", evil, model_spec=spec("orders", "<b>bold</b>"))
    change = changes.open_change(analyst, "<script>alert(2)</script>")
    changes.save_model(analyst, change, "orders", evil + "-- more\n", spec("orders", "<b>bold</b>"))
    client = client_for(analyst)
    for url in (f"/changes/{change.pk}/", f"/changes/{change.pk}/models/orders/edit/", "/models/orders/history/",
                "/changes/"):
        page = text(client.get(url))
        assert "<script>alert" not in page, url
        assert "<b>bold" not in page, url
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(client.get("/models/orders/history/"))


# --------------------------------------------------------------------------- history and restore


def test_history_shows_every_version_with_its_diff(analyst, bob, reviewer):
    live_model(analyst, reviewer, "orders", "select 1 as id\n")
    live_model(bob, reviewer, "orders", "select 2 as id\n")
    page = text(client_for(reviewer).get("/models/orders/history/"))
    versions = re.findall(r'<li class="version"', page)
    assert len(versions) == 2
    assert page.index("Builder") < page.index("analyst")  # newest first: Bob's version on top
    assert re.search(r'class="diff-add">.*?select 2 as id</td>', page, re.S)
    assert "Restore this version" not in page  # reviewers do not edit
    assert client_for(reviewer).get("/models/nothing_here/history/").status_code == 404
    assert client_for(reviewer).get("/models/not-a-name/history/").status_code == 404


def test_restoring_a_version_opens_a_change_that_puts_it_back(analyst, bob, reviewer):
    live_model(analyst, reviewer, "orders", "select 1 as id\n")
    live_model(bob, reviewer, "orders", "select 2 as id\n")
    client = client_for(analyst)
    page = text(client.get("/models/orders/history/"))
    assert page.count("Restore this version") == 1  # the older one; the current one needs no restoring
    sha = re.search(r'name="sha" value="([0-9a-f]{40})"', page).group(1)
    response = client.post("/models/orders/revert/", {"sha": sha})
    change = ChangeRequest.objects.filter(author=analyst).latest("pk")
    assert response.status_code == 302 and response["Location"] == f"/changes/{change.pk}/"
    assert reading.get_model(analyst, "orders", change=change).sql == "select 1 as id\n"
    assert client.post("/models/orders/revert/", {"sha": "nope"}, follow=True).status_code == 200


def test_edit_in_a_change_opens_one_and_goes_to_the_form(analyst, reviewer):
    live_model(analyst, reviewer)
    response = client_for(analyst).post("/models/orders/edit/")
    change = ChangeRequest.objects.filter(author=analyst).latest("pk")
    assert change.title == "Edit orders" and change.state == "draft"
    assert response["Location"] == f"/changes/{change.pk}/models/orders/edit/"
    assert client_for(analyst).post("/models/nothing_here/edit/").status_code == 404
