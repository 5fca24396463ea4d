"""The change request's state machine (compare-and-set) and who may see and edit what."""

import pytest
from django.core.exceptions import PermissionDenied

from models_service import changes
from models_service.errors import InvalidState, NotFound
from models_service.models import AuditEntry, ChangeRequest

from .conftest import approve, spec
from .test_concurrency import run_concurrently


def saved_change(user, title="x"):
    change = changes.open_change(user, title)
    changes.save_model(user, change, "orders", "select 1", spec("orders"))
    return change


@pytest.mark.django_db
def test_submit_withdraw_resubmit_and_abandon(analyst):
    change = saved_change(analyst)
    change = changes.submit_change(analyst, change)
    assert change.state == "submitted" and change.submitted_at is not None
    change = changes.withdraw_change(analyst, change)
    assert change.state == "draft" and change.submitted_at is None
    changes.submit_change(analyst, change)
    change = changes.abandon_change(analyst, change)
    assert change.state == "abandoned"
    with pytest.raises(InvalidState, match="abandoned"):
        changes.submit_change(analyst, change)
    actions = list(AuditEntry.objects.filter(object_id=str(change.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["change.open", "change.save", "change.submit", "change.withdraw", "change.submit",
                       "change.abandon"]


@pytest.mark.django_db
def test_an_empty_change_cannot_be_submitted(analyst):
    change = changes.open_change(analyst, "empty")
    with pytest.raises(InvalidState, match="nothing to review"):
        changes.submit_change(analyst, change)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_one_wins(analyst):
    change = saved_change(analyst)
    outcomes = run_concurrently(2, lambda i: changes.submit_change(analyst, change))
    results = [o for o, _ in outcomes]
    assert sum(isinstance(r, ChangeRequest) for r in results) == 1
    assert sum(isinstance(r, InvalidState) for r in results) == 1
    assert AuditEntry.objects.filter(action="change.submit").count() == 1


@pytest.mark.django_db(transaction=True)
def test_withdraw_racing_a_merge_never_both_win(analyst, reviewer):
    from models_service import merging

    change = saved_change(analyst)
    changes.submit_change(analyst, change)
    approve(change)
    calls = [lambda: merging.merge_change(reviewer, change), lambda: changes.withdraw_change(analyst, change)]
    outcomes = [o for o, _ in run_concurrently(2, lambda i: calls[i]())]
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    state = ChangeRequest.objects.get(pk=change.pk).state
    assert state in ("merged", "draft")


@pytest.mark.django_db
def test_drafts_are_private_to_their_author_and_admins(analyst, other_analyst, reviewer, admin, viewer):
    draft = saved_change(analyst, "secret draft")
    assert changes.get_change(admin, draft.pk) == draft
    for outsider in (other_analyst, reviewer, viewer):
        with pytest.raises(NotFound):
            changes.get_change(outsider, draft.pk)
        assert draft not in changes.visible_changes(outsider)
    changes.submit_change(analyst, draft)
    assert changes.get_change(reviewer, draft.pk) == draft  # reviewers see submitted changes
    assert draft in changes.visible_changes(reviewer)
    with pytest.raises(NotFound):
        changes.get_change(other_analyst, draft.pk)  # other analysts see only their own


@pytest.mark.django_db
def test_only_the_author_or_an_admin_edits_a_change(analyst, other_analyst, reviewer, admin, viewer):
    change = saved_change(analyst)
    changes.submit_change(analyst, change)
    for stranger in (other_analyst, reviewer, viewer):
        with pytest.raises((PermissionDenied, NotFound)):
            changes.save_model(stranger, change, "orders", "select 2", spec("orders"))
    result = changes.save_model(admin, change, "orders", "select 3", spec("orders"))
    assert result.changed


@pytest.mark.django_db
def test_viewers_and_reviewers_cannot_open_changes(reviewer, viewer):
    for user in (reviewer, viewer):
        with pytest.raises(PermissionDenied):
            changes.open_change(user, "nope")
        with pytest.raises(PermissionDenied):
            changes.save_model(user, None, "orders", "select 1", spec("orders"))
    assert not ChangeRequest.objects.exists()
