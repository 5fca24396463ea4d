"""Reading: a model at any commit, the project's files, a change's diff against main, a model's history."""

import pytest

from models_service import changes, merging, reading
from models_service.errors import InvalidName, NotFound
from models_service.project_files import ModelSpec

from .conftest import approve, spec

pytestmark = pytest.mark.django_db


def test_listing_shows_models_sources_seeds_and_macros(analyst):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.save_model(analyst, change, "revenue", "select 2", spec("revenue"), folder="marts/finance")
    listing = reading.list_project(analyst, change=change)
    assert listing.models == [{"name": "orders", "path": "models/orders.sql"},
                              {"name": "revenue", "path": "models/marts/finance/revenue.sql"}]
    assert listing.sources == []  # the skeleton's raw source has no tables yet
    main = reading.list_project(analyst)
    assert main.models == []


def test_a_model_at_an_earlier_commit(analyst):
    change = changes.open_change(analyst, "x")
    first = changes.save_model(analyst, change, "orders", "select 1", spec("orders", "one"))
    changes.save_model(analyst, change, "orders", "select 2", spec("orders", "two"))
    old = reading.get_model(analyst, "orders", at=first.sha)
    assert old.sql == "select 1\n" and old.spec.description == "one" and old.commit == first.sha
    assert reading.get_model(analyst, "orders", change=change).spec.description == "two"
    with pytest.raises(NotFound):
        reading.get_model(analyst, "orders")  # not on main
    with pytest.raises(InvalidName):
        reading.get_model(analyst, "../../etc/passwd")
    with pytest.raises(NotFound):
        reading.get_model(analyst, "orders", at="0" * 40)


def test_change_diff_per_model_with_sql_and_properties(analyst, reviewer):
    base = changes.open_change(analyst, "base")
    changes.save_model(analyst, base, "orders", "select 1 as id\n", spec("orders", "Orders", ("id",)))
    changes.save_model(analyst, base, "legacy", "select 0\n", spec("legacy"))
    changes.submit_change(analyst, base)
    approve(base)
    merging.merge_change(reviewer, base)

    change = changes.open_change(analyst, "edit")
    changes.save_model(analyst, change, "orders", "select 1 as id, 2 as amount\n",
                       spec("orders", "Orders", ("id", "amount")))
    changes.save_model(analyst, change, "customers", "select 1\n", spec("customers"))
    changes.delete_model(analyst, change, "legacy")
    diffs = {d.name: d for d in reading.change_diff(analyst, change)}
    assert {n: d.status for n, d in diffs.items()} == {"orders": "modified", "customers": "added", "legacy": "deleted"}
    orders = diffs["orders"]
    assert "-select 1 as id\n+select 1 as id, 2 as amount\n" in orders.sql_diff
    assert "+- name: amount" in orders.properties_diff
    assert orders.paths == ["models/orders.sql", "models/orders.yml"]


def test_change_diff_shows_a_rename(analyst, reviewer):
    base = changes.open_change(analyst, "base")
    changes.save_model(analyst, base, "orders", "select 1\n", spec("orders", "O"))
    changes.submit_change(analyst, base)
    approve(base)
    merging.merge_change(reviewer, base)
    change = changes.open_change(analyst, "rename")
    changes.rename_model(analyst, change, "orders", "all_orders")
    diffs = reading.change_diff(analyst, change)
    assert [(d.name, d.status, d.old_name) for d in diffs] == [("all_orders", "renamed", "orders")]


def test_history_of_a_model_follows_renames_and_shows_who_and_what(analyst, other_analyst, reviewer):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1\n", spec("orders"))
    changes.save_model(analyst, change, "orders", "select 1\n", spec("orders", "described"))
    changes.save_model(analyst, change, "customers", "select 9\n", spec("customers"))  # not in the history
    changes.rename_model(analyst, change, "orders", "all_orders")
    changes.submit_change(analyst, change)
    approve(change)
    merging.merge_change(reviewer, change)
    second = changes.open_change(other_analyst, "y")
    changes.save_model(other_analyst, second, "all_orders", "select 2\n", spec("all_orders", "described"))
    history = reading.model_history(other_analyst, "all_orders", change=second)
    assert [(h.author, h.message, h.parts) for h in history] == [
        ("Bob Builder", "Update all_orders: SQL", ["SQL"]),
        ("Alice Analyst", "Rename orders to all_orders", ["renamed from orders"]),
        ("Alice Analyst", "Update orders: description", ["properties"]),
        ("Alice Analyst", "Add orders", ["created"]),
    ]
    diff = reading.version_diff(analyst, "all_orders", history[1].sha)
    assert diff.status == "renamed" and diff.old_name == "orders"
    first = reading.version_diff(analyst, "orders", history[3].sha)
    assert first.status == "added" and "+select 1" in first.sql_diff


def test_change_commits_list_who_saved_what(analyst):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1\n", ModelSpec("orders"))
    commits = reading.change_commits(analyst, change)
    assert [(c["author"], c["message"]) for c in commits] == [("Alice Analyst", "Add orders")]


def test_any_project_file_at_a_commit(analyst):
    assert "name: data_models" in reading.read_file(analyst, "dbt_project.yml")
    for bad in ("../etc/passwd", "/etc/passwd", ".git/config", "models/../../x", "a\x00b", "-x"):
        with pytest.raises(InvalidName):
            reading.read_file(analyst, bad)
    with pytest.raises(NotFound):
        reading.read_file(analyst, "models/missing.sql")
    with pytest.raises(NotFound):
        reading.read_file(analyst, "models")  # a folder is not a file
