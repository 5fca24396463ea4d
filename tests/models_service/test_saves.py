"""Saving models: one commit per save on the change's branch, authored by the analyst, with the SQL and
its properties entry together; a stale base is a conflict carrying the current version."""

import pytest

from models_service import changes, reading
from models_service.errors import Conflict, InvalidState, NotFound
from models_service.git_store import MAIN_REF
from models_service.models import ChangeRequest, IndexedNode
from models_service.project_files import parse_properties

from .conftest import git_dir, spec

pytestmark = pytest.mark.django_db


def test_first_use_creates_a_dbt_project_skeleton_on_main(store, repo):
    files = git_dir(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert "dbt_project.yml" in files and "models/sources.yml" in files
    assert git_dir(repo, "log", "--format=%an|%s", "main") == "dmaas portal|Start the data-models project"
    assert git_dir(repo, "config", "core.fsync") == "committed,reference"


def test_save_is_one_commit_by_the_analyst_with_sql_and_yml(analyst, repo):
    change = changes.open_change(analyst, "Monthly revenue")
    assert change.branch == f"refs/heads/changes/{change.pk}-monthly-revenue"
    result = changes.save_model(analyst, change, "orders", "select 1 as id", spec("orders", "All orders", ("id",), ("unique",)))
    assert result.changed and result.created
    assert result.message == "Add orders"
    assert git_dir(repo, "rev-parse", change.branch) == result.sha
    assert git_dir(repo, "log", "-1", "--format=%an <%ae>|%cn", result.sha) == "Alice Analyst <alice@example.com>|dmaas portal"
    assert git_dir(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", result.sha).splitlines() == [
        "models/orders.sql", "models/orders.yml"]
    props = parse_properties(git_dir(repo, "show", f"{result.sha}:models/orders.yml"), "models/orders.yml")
    assert props.models[0].description == "All orders"
    assert props.models[0].columns[0].tests[0].kind == "unique"
    assert ChangeRequest.objects.get(pk=change.pk).head_sha == result.sha
    assert git_dir(repo, "rev-parse", MAIN_REF) != result.sha  # main untouched
    node = IndexedNode.objects.get(ref=change.branch_name, name="orders")
    assert node.description == "All orders" and [c.name for c in node.columns.all()] == ["id"]


def test_generated_message_names_what_changed(analyst):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1 as id", spec("orders", "", ("id",)))
    result = changes.save_model(analyst, change, "orders", "select 1 as id",
                                spec("orders", "All orders", ("id", "amount", "status")))
    assert result.message == "Update orders: description, 2 columns"
    same = changes.save_model(analyst, change, "orders", "select 1 as id",
                              spec("orders", "All orders", ("id", "amount", "status")))
    assert not same.changed and same.sha == result.sha  # nothing differs: no empty commit


def test_stale_base_is_a_conflict_carrying_the_current_version(analyst):
    change = changes.open_change(analyst, "x")
    first = changes.save_model(analyst, change, "orders", "select 1 as id", spec("orders"))
    second = changes.save_model(analyst, change, "orders", "select 2 as id", spec("orders"), base_sha=first.sha)
    with pytest.raises(Conflict) as caught:
        changes.save_model(analyst, change, "orders", "select 3 as id", spec("orders"), base_sha=first.sha)
    assert caught.value.current_sha == second.sha
    assert caught.value.current.sql == "select 2 as id\n"
    assert "orders was changed by Alice Analyst" in str(caught.value)


def test_save_of_another_model_from_an_old_base_is_applied_on_the_new_tip(analyst):
    change = changes.open_change(analyst, "x")
    first = changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.save_model(analyst, change, "customers", "select 2", spec("customers"), base_sha=first.sha)
    third = changes.save_model(analyst, change, "payments", "select 3", spec("payments"), base_sha=first.sha)
    listing = reading.list_project(analyst, change=change)
    assert [m["name"] for m in listing.models] == ["customers", "orders", "payments"]
    assert third.changed


def test_save_without_a_change_opens_one(analyst):
    result = changes.save_model(analyst, None, "orders", "select 1", spec("orders"))
    assert result.opened and result.change.title == "Edit orders"
    assert result.change.state == "draft"


def test_rename_and_delete_are_single_commits(analyst, repo):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders", "O"))
    renamed = changes.rename_model(analyst, change, "orders", "orders_v2")
    assert renamed.message == "Rename orders to orders_v2"
    files = git_dir(repo, "ls-tree", "-r", "--name-only", renamed.sha).splitlines()
    assert "models/orders_v2.sql" in files and "models/orders_v2.yml" in files and "models/orders.sql" not in files
    assert reading.get_model(analyst, "orders_v2", change=change).spec.description == "O"
    deleted = changes.delete_model(analyst, change, "orders_v2")
    files = git_dir(repo, "ls-tree", "-r", "--name-only", deleted.sha).splitlines()
    assert not [f for f in files if "orders" in f]
    with pytest.raises(NotFound):
        changes.delete_model(analyst, change, "orders_v2")


def test_saving_to_a_closed_change_is_refused(analyst):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.abandon_change(analyst, change)
    with pytest.raises(InvalidState):
        changes.save_model(analyst, change, "orders", "select 2", spec("orders"))


def test_form_edit_keeps_config_and_meta_it_did_not_send(analyst, repo):
    from models_service.project_files import ModelSpec

    change = changes.open_change(analyst, "x")
    full = ModelSpec("orders", "d", config={"materialized": "table"}, extra={"meta": {"owner": "finance"}})
    changes.save_model(analyst, change, "orders", "select 1", full)
    result = changes.save_model(analyst, change, "orders", "select 1", spec("orders", "new description"))
    props = parse_properties(git_dir(repo, "show", f"{result.sha}:models/orders.yml"), "x").models[0]
    assert props.config == {"materialized": "table"} and props.extra == {"meta": {"owner": "finance"}}
    assert props.description == "new description"
    assert IndexedNode.objects.get(ref=change.branch_name, name="orders").owner == "finance"


def test_a_failed_save_leaves_no_empty_change_behind(analyst, repo):
    with pytest.raises(NotFound):
        changes.delete_model(analyst, None, "missing")
    assert not ChangeRequest.objects.exists()
    assert git_dir(repo, "for-each-ref", "--format=%(refname)").splitlines() == ["refs/heads/main"]


def test_commits_are_written_as_git_commit_tree_writes_them(store, repo, monkeypatch):
    """The store writes commit objects itself (no git process): byte for byte what `git commit-tree`
    makes of the same tree, parents, people, times and message."""
    import datetime as dt
    import subprocess

    from models_service.git_store import Identity
    from models_service.git_store import store as git_store

    committed = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30)))
    monkeypatch.setattr(git_store, "now", lambda: committed)
    authored = dt.datetime(2024, 2, 29, 23, 59, 58, tzinfo=dt.UTC)
    main = git_dir(repo, "rev-parse", "main")
    tree = git_dir(repo, "rev-parse", "main^{tree}")
    who = Identity("Zoë Ünicode-Analyst", "zoe@example.com")
    message = "Ändere orders\n\nWith a body line.\n"
    ours = store.commit_tree(tree, [main], who, message, authored)
    env = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email, "GIT_AUTHOR_DATE": f"@{int(authored.timestamp())} +0000",
           "GIT_COMMITTER_NAME": "dmaas portal", "GIT_COMMITTER_EMAIL": "portal@dmaas.invalid",
           "GIT_COMMITTER_DATE": f"@{int(committed.timestamp())} -0330", "PATH": __import__("os").environ["PATH"]}
    theirs = subprocess.run(["git", "--git-dir", str(repo), "commit-tree", tree, "-p", main], input=message.encode(),
                            env=env, capture_output=True, check=True).stdout.decode().strip()
    assert ours == theirs
    assert git_dir(repo, "cat-file", "-t", ours) == "commit"


def test_saved_objects_are_whole_loose_objects_with_no_temporary_file_left(analyst, repo):
    change = changes.open_change(analyst, "Objects")
    result = changes.save_model(analyst, change, "orders", "select 1 as id", spec("orders"))
    blob = git_dir(repo, "rev-parse", f"{result.sha}:models/orders.sql")
    assert (repo / "objects" / blob[:2] / blob[2:]).is_file()  # loose, under its id
    assert git_dir(repo, "cat-file", "-p", blob) == "select 1 as id"
    assert list(repo.glob("objects/*/tmp_obj_*")) == []
    again = changes.save_model(analyst, change, "orders", "select 1 as id", spec("orders"))
    assert not again.changed and again.sha == result.sha  # the same files: no commit
