"""The REST API of the data-models repository (issue 4, item 6), on a real bare git repository.

An analyst opens a change, saves models (each save one commit authored by them), reads the diff and
the saves, submits; a stale `base_sha` is a 409 carrying the current version; bad names are refused
with nothing written; a reviewer merges; history, version diffs and revert work on main; every
write is in the audit log with source "api".
"""

from __future__ import annotations

import subprocess

import pytest

from models_service.models import ChangeRequest
from models_service.models.audit import AuditEntry
from portal import tokens
from tests.personas import make_user

from .conftest import client_for

pytestmark = pytest.mark.django_db

ORDERS = {
    "sql": "select 1 as order_id, 'paid' as status\n",
    "description": "One row per order.",
    "columns": [
        {"name": "order_id", "description": "The order.", "data_tests": ["unique", "not_null"]},
        {"name": "status", "data_tests": [{"accepted_values": {"values": ["paid", "open"]}}]},
    ],
}


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True).stdout


def open_change(client, title="Add orders") -> dict:
    response = client.post("/api/v1/changes", {"title": title, "description": "why"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def put_model(client, change_id: int, name: str, body: dict, expect: int | None = None):
    response = client.put(f"/api/v1/changes/{change_id}/models/{name}", body, format="json")
    if expect is not None:
        assert response.status_code == expect, response.content
    return response


def test_an_analysts_save_is_a_commit_of_theirs_on_the_change_branch(as_analyst, analyst, repo):
    change = open_change(as_analyst)
    assert change["state"] == "draft" and change["author"] == analyst.username
    assert change["head_sha"] == change["base_sha"]

    saved = put_model(as_analyst, change["id"], "orders", ORDERS, expect=201).json()
    assert saved["changed"] and saved["created"] and saved["change"] == change["id"]
    assert saved["sql_path"] == "models/orders.sql" and saved["yml_path"] == "models/orders.yml"

    branch = f"refs/heads/{change['branch']}"
    assert git(repo, "rev-parse", branch).strip() == saved["sha"]
    author = git(repo, "log", "-1", "--format=%an <%ae>", saved["sha"]).strip()
    assert author == f"{analyst.get_full_name() or analyst.username} <{analyst.email}>"
    yml = git(repo, "show", f"{saved['sha']}:models/orders.yml")
    assert "accepted_values" in yml and "One row per order." in yml
    # main is untouched until the change merges
    assert "orders" not in git(repo, "ls-tree", "-r", "--name-only", "refs/heads/main")

    detail = as_analyst.get(f"/api/v1/changes/{change['id']}").json()
    assert detail["head_sha"] == saved["sha"]
    model = as_analyst.get(f"/api/v1/changes/{change['id']}/models/orders").json()
    assert model["sql"] == ORDERS["sql"] and model["commit"] == saved["sha"]
    assert model["properties"]["columns"][0]["data_tests"] == ["unique", "not_null"]

    # The same body again changes nothing: no commit, 200.
    again = put_model(as_analyst, change["id"], "orders", ORDERS | {"base_sha": saved["sha"]}, expect=200).json()
    assert again["changed"] is False and again["sha"] == saved["sha"]


def test_diff_saves_and_models_of_a_change(as_analyst):
    change = open_change(as_analyst)
    first = put_model(as_analyst, change["id"], "orders", ORDERS, expect=201).json()
    put_model(as_analyst, change["id"], "orders",
              ORDERS | {"sql": "select 2 as order_id, 'open' as status\n", "base_sha": first["sha"],
                        "message": "Use the second order"}, expect=200)

    diff = as_analyst.get(f"/api/v1/changes/{change['id']}/diff").json()
    assert [d["name"] for d in diff] == ["orders"] and diff[0]["status"] == "added"
    assert "+select 2 as order_id" in diff[0]["sql_diff"]

    commits = as_analyst.get(f"/api/v1/changes/{change['id']}/commits").json()
    assert [c["message"] for c in commits][0] == "Use the second order"
    assert len(commits) == 2

    names = [m["name"] for m in as_analyst.get(f"/api/v1/changes/{change['id']}/models").json()]
    assert "orders" in names
    listing = as_analyst.get(f"/api/v1/project?change={change['id']}").json()
    assert {"name": "orders", "path": "models/orders.sql"} in listing["models"]


def test_a_stale_base_sha_is_a_409_carrying_the_current_version(as_analyst):
    change = open_change(as_analyst)
    first = put_model(as_analyst, change["id"], "orders", ORDERS, expect=201).json()
    # Another tab saves on top of the first version ...
    put_model(as_analyst, change["id"], "orders", ORDERS | {"sql": "select 3 as order_id\n", "base_sha": first["sha"]},
              expect=200)
    # ... and this one, still at the first version, must not overwrite it.
    stale = put_model(as_analyst, change["id"], "orders", ORDERS | {"sql": "select 4 as order_id\n",
                                                                   "base_sha": first["sha"]}, expect=409).json()
    error = stale["error"]
    assert error["code"] == "conflict"
    assert "orders was changed by" in error["message"]
    assert error["current"]["sql"] == "select 3 as order_id\n"
    assert error["current_sha"] != first["sha"]
    model = as_analyst.get(f"/api/v1/changes/{change['id']}/models/orders").json()
    assert model["sql"] == "select 3 as order_id\n"


@pytest.mark.parametrize("name", ["Orders", "-orders", "orders.sql", "a" * 200, "оrders", "select", "x\x00y"])
def test_a_bad_model_name_is_refused_and_nothing_is_written(as_analyst, repo, name):
    change = open_change(as_analyst)
    before = git(repo, "for-each-ref")
    response = as_analyst.put(f"/api/v1/changes/{change['id']}/models/{name}", ORDERS, format="json")
    assert response.status_code in (400, 404), response.content
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_name"
        assert response.json()["error"]["message"]
    assert git(repo, "for-each-ref") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sql": 5}, "sql"),
        ({"description": "no sql"}, "sql"),
        ({"sql": "select 1", "columns": [{"name": "a"}, {"name": "a"}]}, None),
        ({"sql": "select 1", "columns": [{"description": "no name"}]}, "columns.0.name"),
        ({"sql": "select 1", "data_tests": [["unique"]]}, None),
        ({"sql": "select 1", "base_sha": "not-a-sha"}, "base_sha"),
        ({"sql": "select 1", "base_sha": "0" * 40}, None),
        ({"sql": "select 1", "folder": "../up"}, None),
    ],
)
def test_bad_input_is_a_clear_400_or_404_and_nothing_is_written(as_analyst, repo, body, field):
    change = open_change(as_analyst)
    before = git(repo, "for-each-ref")
    response = as_analyst.put(f"/api/v1/changes/{change['id']}/models/orders", body, format="json")
    assert response.status_code in (400, 404), response.content
    error = response.json()["error"]
    assert error["message"] and not error["message"].startswith("Traceback")
    if field:
        assert error["field"] == field
    assert git(repo, "for-each-ref") == before


def test_the_state_machine_through_the_api(as_analyst):
    change = open_change(as_analyst)
    empty = as_analyst.post(f"/api/v1/changes/{change['id']}/submit")
    assert empty.status_code == 409 and empty.json()["error"]["code"] == "invalid_state"
    put_model(as_analyst, change["id"], "orders", ORDERS, expect=201)
    assert as_analyst.post(f"/api/v1/changes/{change['id']}/submit").json()["state"] == "submitted"
    again = as_analyst.post(f"/api/v1/changes/{change['id']}/submit")
    assert again.status_code == 409 and "submitted" in again.json()["error"]["message"]
    assert as_analyst.post(f"/api/v1/changes/{change['id']}/withdraw").json()["state"] == "draft"
    assert as_analyst.post(f"/api/v1/changes/{change['id']}/abandon").json()["state"] == "abandoned"
    closed = put_model(as_analyst, change["id"], "orders", ORDERS | {"sql": "select 9"}, expect=409)
    assert "abandoned" in closed.json()["error"]["message"]

    states = {c["id"]: c["state"] for c in as_analyst.get("/api/v1/changes?state=abandoned").json()["results"]}
    assert states == {change["id"]: "abandoned"}
    assert as_analyst.get("/api/v1/changes?state=open").json()["count"] == 0
    bad = as_analyst.get("/api/v1/changes?state=done")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "state"


def test_who_may_see_and_edit_a_change(as_analyst, reviewer, viewer):
    change = open_change(as_analyst)
    other = client_for(make_user("other", "analyst"))
    url = f"/api/v1/changes/{change['id']}"
    # A draft is its author's: another analyst and a reviewer do not see it at all.
    assert other.get(url).status_code == 404
    assert client_for(reviewer).get(url).status_code == 404
    assert other.get("/api/v1/changes").json()["count"] == 0
    assert put_model(other, change["id"], "orders", ORDERS).status_code == 404
    # Submitted: reviewers see it, but only its author edits it.
    put_model(as_analyst, change["id"], "orders", ORDERS, expect=201)
    as_analyst.post(f"{url}/submit")
    assert client_for(reviewer).get(url).status_code == 200
    assert client_for(reviewer).get(f"{url}/diff").status_code == 200
    assert put_model(client_for(reviewer), change["id"], "orders", ORDERS).status_code == 403
    assert put_model(client_for(viewer), change["id"], "orders", ORDERS).status_code == 403
    assert client_for(viewer).post("/api/v1/changes", {"title": "x"}, format="json").status_code == 403
    assert other.post(f"{url}/withdraw").status_code == 404


def test_a_token_saves_as_its_owner_and_every_write_is_audited(analyst, repo):
    issued = tokens.create_token(analyst, analyst, name="script", source="cli")
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    change = open_change(client)
    saved = put_model(client, change["id"], "orders", ORDERS, expect=201).json()
    client.post(f"/api/v1/changes/{change['id']}/models/orders/rename", {"new_name": "orders_v2"}, format="json")
    client.delete(f"/api/v1/changes/{change['id']}/models/orders_v2", format="json")
    assert git(repo, "log", "-1", "--format=%ae", saved["sha"]).strip() == analyst.email
    entries = AuditEntry.objects.filter(object_id=str(change["id"]))
    assert {(e.action, e.source, e.actor_name) for e in entries} >= {
        ("change.open", "api", analyst.username),
        ("change.save", "api", analyst.username),
        ("change.rename", "api", analyst.username),
        ("change.delete_model", "api", analyst.username),
    }
    assert entries.get(action="change.save").sha == saved["sha"]


def test_merge_then_history_version_diff_and_revert_on_main(as_analyst, as_reviewer, analyst, repo):
    change = open_change(as_analyst)
    first = put_model(as_analyst, change["id"], "orders", ORDERS, expect=201).json()
    put_model(as_analyst, change["id"], "orders",
              ORDERS | {"sql": "select 2 as order_id, 'open' as status\n", "base_sha": first["sha"]}, expect=200)
    as_analyst.post(f"/api/v1/changes/{change['id']}/submit")
    # The review issue approves; until then the state is set as its approve_change will set it.
    row = ChangeRequest.objects.get(pk=change["id"])
    ChangeRequest.objects.filter(pk=row.pk).update(state="approved", approved_sha=row.head_sha)

    own = as_analyst.post(f"/api/v1/changes/{change['id']}/merge")
    assert own.status_code == 403  # nobody merges their own change (and analysts do not review)
    merged = as_reviewer.post(f"/api/v1/changes/{change['id']}/merge")
    assert merged.status_code == 200, merged.content
    assert merged.json()["state"] == "merged"
    assert git(repo, "show", "refs/heads/main:models/orders.sql").startswith("select 2")

    models = as_analyst.get("/api/v1/models").json()["results"]
    orders = next(m for m in models if m["name"] == "orders")
    assert [c["name"] for c in orders["columns"]] == ["order_id", "status"]
    assert as_analyst.get("/api/v1/models?q=order").json()["results"][0]["name"] == "orders"

    history = as_analyst.get("/api/v1/models/orders/history").json()
    assert [h["sha"] for h in history][-1] == first["sha"]
    assert history[-1]["parts"] == ["created"] and history[-1]["author"] == (analyst.get_full_name() or analyst.username)
    diff = as_analyst.get(f"/api/v1/models/orders/versions/{history[0]['sha']}/diff").json()
    assert "-select 1 as order_id" in diff["sql_diff"]
    at_first = as_analyst.get(f"/api/v1/models/orders?at={first['sha']}").json()
    assert at_first["sql"].startswith("select 1")

    reverted = as_analyst.post("/api/v1/models/orders/revert", {"to_sha": first["sha"]}, format="json")
    assert reverted.status_code == 201, reverted.content
    body = reverted.json()
    assert body["opened"] and body["changed"]
    back = as_analyst.get(f"/api/v1/changes/{body['change']}/models/orders").json()
    assert back["sql"].startswith("select 1")
    assert AuditEntry.objects.filter(action="model.revert", source="api").exists()
    assert AuditEntry.objects.filter(action="change.merge", source="api", sha=merged.json()["merged_sha"]).exists()


def test_a_change_whose_base_moved_is_flagged_and_updated_in_one_call(as_analyst, as_reviewer):
    late = open_change(as_analyst, "Later change")
    put_model(as_analyst, late["id"], "customers", {"sql": "select 1 as customer_id\n"}, expect=201)

    early = open_change(as_analyst, "Earlier change")
    put_model(as_analyst, early["id"], "orders", ORDERS, expect=201)
    as_analyst.post(f"/api/v1/changes/{early['id']}/submit")
    row = ChangeRequest.objects.get(pk=early["id"])
    ChangeRequest.objects.filter(pk=row.pk).update(state="approved", approved_sha=row.head_sha)
    assert as_reviewer.post(f"/api/v1/changes/{early['id']}/merge").status_code == 200

    flagged = as_analyst.get(f"/api/v1/changes/{late['id']}").json()
    assert flagged["needs_update"] is True and flagged["update_reason"]
    updated = as_analyst.post(f"/api/v1/changes/{late['id']}/update", {}, format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["needs_update"] is False
    names = {m["name"] for m in as_analyst.get(f"/api/v1/changes/{late['id']}/models").json()}
    assert {"orders", "customers"} <= names


def test_unknown_change_and_model_are_404s_in_the_error_shape(as_analyst):
    missing = as_analyst.get("/api/v1/changes/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    change = open_change(as_analyst)
    nothing = as_analyst.get(f"/api/v1/changes/{change['id']}/models/nope")
    assert nothing.status_code == 404 and "nope" in nothing.json()["error"]["message"]
    history = as_analyst.get("/api/v1/models/nope/history")
    assert history.status_code == 404
    bad_sha = as_analyst.get("/api/v1/models/orders/versions/xyz/diff")
    assert bad_sha.status_code == 400 and bad_sha.json()["error"]["code"] == "invalid_name"
