"""Merging changes into main, updating a change with main, and the conflicts in plain words (D4)."""

import pytest

from models_service import changes, merging, reading
from models_service.errors import InvalidState, MergeConflict, NotFound
from models_service.models import AuditEntry, ChangeRequest, IndexedNode
from models_service.project_files import ModelSpec

from .conftest import approve, fsck, git_dir, spec

pytestmark = pytest.mark.django_db

SQL = "select\n    id,\n    amount,\n    status\nfrom {{ ref('stg_orders') }}\n"


def merged_change(author, reviewer, title, models):
    change = changes.open_change(author, title)
    for name, sql, props in models:
        changes.save_model(author, change, name, sql, props)
    changes.submit_change(author, change)
    approve(change)
    return merging.merge_change(reviewer, change)


def test_merge_puts_the_analysts_commits_on_main(analyst, reviewer, repo):
    result = merged_change(analyst, reviewer, "Orders", [("orders", SQL, spec("orders", "All orders", ("id",)))])
    main = git_dir(repo, "rev-parse", "main")
    assert result.sha == main
    assert git_dir(repo, "log", "-1", "--format=%P|%an|%s", main).split("|")[1:] == [
        "Rita Reviewer", f"Merge change #{result.change.pk}: Orders"]
    assert len(git_dir(repo, "log", "-1", "--format=%P", main).split()) == 2
    assert "Alice Analyst|Add orders" in git_dir(repo, "log", "--format=%an|%s", "main").splitlines()
    change = ChangeRequest.objects.get(pk=result.change.pk)
    assert change.state == "merged" and change.merged_sha == main
    node = IndexedNode.objects.get(ref="main", name="orders")
    assert node.description == "All orders" and node.depends_on == ["stg_orders"]
    assert not IndexedNode.objects.filter(ref=change.branch_name).exists()
    assert AuditEntry.objects.filter(action="change.merge", sha=main).count() == 1
    fsck(repo)


def test_two_changes_to_different_models_both_merge(analyst, other_analyst, reviewer, repo):
    a = changes.open_change(analyst, "A")
    changes.save_model(analyst, a, "orders", SQL, spec("orders"))
    b = changes.open_change(other_analyst, "B")
    changes.save_model(other_analyst, b, "customers", "select 1 as id\n", spec("customers"))
    for change, who in ((a, analyst), (b, other_analyst)):
        changes.submit_change(who, change)
        approve(change)
    merging.merge_change(reviewer, a)
    assert ChangeRequest.objects.get(pk=b.pk).needs_update  # main moved under b
    merging.merge_change(reviewer, b)
    files = git_dir(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert {"models/orders.sql", "models/customers.sql"} <= set(files)


def test_conflicting_merge_is_refused_in_plain_words_and_main_is_unchanged(analyst, other_analyst, reviewer, repo):
    merged_change(analyst, reviewer, "Base", [("orders", SQL, spec("orders"))])
    a = changes.open_change(analyst, "Amounts in cents")
    b = changes.open_change(other_analyst, "Amounts in euros")
    changes.save_model(analyst, a, "orders", SQL.replace("amount,", "amount * 100 as amount_cents,"), spec("orders"))
    b_save = changes.save_model(other_analyst, b, "orders", SQL.replace("amount,", "amount / 1.1 as amount_eur,"),
                                spec("orders"))
    for change, who in ((a, analyst), (b, other_analyst)):
        changes.submit_change(who, change)
        approve(change)
    merging.merge_change(reviewer, a)
    main_before = git_dir(repo, "rev-parse", "main")
    with pytest.raises(MergeConflict) as caught:
        merging.merge_change(reviewer, b)
    message = str(caught.value)
    assert "orders (SQL, line 3)" in message
    assert "Alice Analyst" in message and "Update orders: SQL" in message
    assert "<<<<<<<" not in message and "CONFLICT" not in message
    assert caught.value.conflicts[0].model == "orders" and caught.value.conflicts[0].lines == [(3, 3)]
    assert git_dir(repo, "rev-parse", "main") == main_before  # D4: main unchanged
    b = ChangeRequest.objects.get(pk=b.pk)
    assert b.needs_update and "orders" in b.update_reason and b.state == "approved"
    assert git_dir(repo, "cat-file", "-t", b_save.sha) == "commit"  # every saved sha still reachable
    assert b_save.sha in git_dir(repo, "rev-list", b.branch)


def test_update_change_with_a_choice_resolves_the_conflict(analyst, other_analyst, reviewer, repo):
    merged_change(analyst, reviewer, "Base", [("orders", SQL, spec("orders"))])
    a = changes.open_change(analyst, "A")
    b = changes.open_change(other_analyst, "B")
    changes.save_model(analyst, a, "orders", SQL.replace("status", "status as order_status"), spec("orders"))
    changes.save_model(other_analyst, b, "orders", SQL.replace("status", "upper(status) as status"), spec("orders"))
    changes.submit_change(analyst, a)
    approve(a)
    merging.merge_change(reviewer, a)
    with pytest.raises(MergeConflict):
        merging.update_change(other_analyst, b)
    result = merging.update_change(other_analyst, b, resolutions={"orders": "mine"})
    assert result.changed
    b = ChangeRequest.objects.get(pk=b.pk)
    assert not b.needs_update and b.base_sha == git_dir(repo, "rev-parse", "main")
    assert "upper(status)" in reading.get_model(other_analyst, "orders", change=b).sql
    assert git_dir(repo, "log", "-1", "--format=%an|%s", b.branch) == "Bob Builder|Update with the latest main"
    changes.submit_change(other_analyst, b)
    approve(b)
    merging.merge_change(reviewer, b)  # now merges cleanly
    fsck(repo)


def test_update_without_conflict_is_one_click(analyst, other_analyst, reviewer, repo):
    b = changes.open_change(other_analyst, "B")
    changes.save_model(other_analyst, b, "customers", "select 1 as id\n", spec("customers"))
    merged_change(analyst, reviewer, "A", [("orders", SQL, spec("orders"))])
    assert ChangeRequest.objects.get(pk=b.pk).needs_update
    result = merging.update_change(other_analyst, b)
    assert result.changed
    listing = reading.list_project(other_analyst, change=b)
    assert {"orders", "customers"} <= {m["name"] for m in listing.models}
    assert not ChangeRequest.objects.get(pk=b.pk).needs_update


def test_properties_of_different_models_in_one_shared_yml_merge_entry_by_entry(analyst, other_analyst, reviewer, repo):
    # An engineers' layout: two models described in one file, adjacent lines.
    shared = ("version: 2\nmodels:\n  - name: orders\n    description: o\n"
              "  - name: customers\n    description: c\n")
    store_change = changes.open_change(analyst, "Layout")
    changes.save_model(analyst, store_change, "orders", "select 1 as id\n", spec("orders", "o"))
    changes.save_model(analyst, store_change, "customers", "select 2 as id\n", spec("customers", "c"))
    from models_service.git_store import Edit
    from models_service.repo import get_store

    get_store().commit(store_change.branch, lambda snap: Edit(
        {"models/orders.yml": None, "models/customers.yml": None, "models/_shop.yml": shared.encode()},
        "Engineer: one yml"), author=get_store().committer)
    changes.submit_change(analyst, store_change)
    approve(store_change)
    merging.merge_change(reviewer, store_change)

    a = changes.open_change(analyst, "Describe orders")
    b = changes.open_change(other_analyst, "Describe customers")
    changes.save_model(analyst, a, "orders", "select 1 as id\n", spec("orders", "Every order"))
    changes.save_model(other_analyst, b, "customers", "select 2 as id\n", spec("customers", "Every customer"))
    assert git_dir(repo, "ls-tree", "--name-only", f"{a.branch}:models").splitlines() == [
        "_shop.yml", "customers.sql", "orders.sql", "sources.yml"]  # the entry was edited where it was
    for change, who in ((a, analyst), (b, other_analyst)):
        changes.submit_change(who, change)
        approve(change)
    merging.merge_change(reviewer, a)
    merging.merge_change(reviewer, b)  # git alone would conflict on adjacent lines
    text = git_dir(repo, "show", "main:models/_shop.yml")
    assert "Every order" in text and "Every customer" in text


def test_merge_requires_an_approval_for_the_current_head(analyst, reviewer):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", SQL, spec("orders"))
    with pytest.raises(NotFound):
        merging.merge_change(reviewer, change)  # a draft: reviewers do not even see it
    changes.submit_change(analyst, change)
    with pytest.raises(InvalidState):
        merging.merge_change(reviewer, change)  # submitted, not approved
    approve(change)
    changes.save_model(analyst, change, "orders", SQL + "-- more\n", spec("orders"))
    change.refresh_from_db()
    assert change.state == "submitted" and change.approved_sha == ""  # the save voided the approval
    with pytest.raises(InvalidState):
        merging.merge_change(reviewer, change)


def test_author_cannot_merge_own_change(analyst):
    from django.core.exceptions import PermissionDenied

    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", SQL, spec("orders"))
    changes.submit_change(analyst, change)
    approve(change)
    with pytest.raises(PermissionDenied):
        merging.merge_change(analyst, change)


def test_system_merge_is_authored_by_the_portal(analyst, repo):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", SQL, spec("orders"))
    changes.submit_change(analyst, change)
    approve(change)
    result = merging.merge_change(None, change)
    assert git_dir(repo, "log", "-1", "--format=%an", result.sha) == "dmaas portal"


def test_revert_opens_a_change_with_the_old_version(analyst, reviewer, repo):
    first = merged_change(analyst, reviewer, "v1", [("orders", SQL, spec("orders", "v1", ("id",)))])
    merged_change(analyst, reviewer, "v2", [("orders", SQL + "where amount > 0\n", ModelSpec("orders", "v2"))])
    result = merging.revert_model(analyst, "orders", first.sha)
    assert result.opened and result.change.title == f"Revert orders to {first.sha[:7]}"
    assert result.message.startswith("Revert orders to the version of")
    now = reading.get_model(analyst, "orders", change=result.change)
    assert now.sql == SQL and now.spec.description == "v1" and [c.name for c in now.spec.columns] == ["id"]
    assert AuditEntry.objects.filter(action="model.revert").count() == 1
