"""RELIABILITY D7: random open/save/concurrent-save/submit/approve/merge/withdraw/abandon steps, checking
after each that the database and the git refs agree, every merged change is on main exactly once,
and nothing was ever written outside models/."""

from __future__ import annotations

import shutil
import tempfile
import threading

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from models_service import changes, merging
from models_service.errors import InvalidState, MergeConflict, NotFound
from models_service.models import AuditEntry, ChangeRequest, IndexedNode, IndexedRef
from models_service.repo import forget_stores, get_store

from .conftest import git_dir, spec

NAMES = ["orders", "customers", "payments"]
USERS: dict[str, object] = {}


class ChangeRequests(RuleBasedStateMachine):
    open_changes = Bundle("changes")

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="dmaas-sm-")
        self.override = override_settings(DMAAS_REPO=f"{self.tmp}/repo.git", DMAAS_REPO_REMOTE="")
        self.override.enable()
        forget_stores()
        self.store = get_store()
        self.initial = self.store.tip("refs/heads/main")
        self.merged: set[int] = set()

    def teardown(self):
        forget_stores()
        self.override.disable()
        shutil.rmtree(self.tmp, ignore_errors=True)
        ChangeRequest.objects.all().delete()
        IndexedNode.objects.all().delete()
        IndexedRef.objects.all().delete()
        AuditEntry.objects.all().delete()

    @rule(target=open_changes, who=st.sampled_from(["alice", "bob"]))
    def open(self, who):
        return changes.open_change(USERS[who], f"change by {who}").pk

    @rule(pk=open_changes, name=st.sampled_from(NAMES), n=st.integers(0, 3))
    def save(self, pk, name, n):
        change = ChangeRequest.objects.get(pk=pk)
        try:
            changes.save_model(change.author, change, name, f"select {n} as id", spec(name, f"v{n}"))
        except InvalidState:
            assert change.state in ("merged", "abandoned")

    @rule(pk=open_changes, first=st.sampled_from(NAMES), second=st.sampled_from(NAMES))
    def concurrent_saves(self, pk, first, second):
        change = ChangeRequest.objects.get(pk=pk)
        errors = []

        def save(name, n):
            try:
                changes.save_model(change.author, change, name, f"select {n} as x", spec(name))
            except InvalidState:
                pass
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=save, args=(name, i + 7)) for i, name in enumerate({first, second})]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors

    @rule(pk=open_changes)
    def submit(self, pk):
        change = ChangeRequest.objects.get(pk=pk)
        try:
            changes.submit_change(change.author, change)
        except InvalidState:
            pass

    @rule(pk=open_changes)
    def approve(self, pk):  # what the review issue's approve_change does, at the branch's tip
        head = self.store.tip(ChangeRequest.objects.get(pk=pk).branch)
        ChangeRequest.objects.filter(pk=pk, state="submitted").update(state="approved", approved_sha=head)

    @rule(pk=open_changes)
    def merge(self, pk):
        try:
            merging.merge_change(USERS["rita"], ChangeRequest.objects.get(pk=pk))
            self.merged.add(pk)
        except (InvalidState, MergeConflict, NotFound):  # a reviewer does not see drafts
            pass

    @rule(pk=open_changes, name=st.sampled_from(NAMES), n=st.integers(0, 3))
    def ship(self, pk, name, n):
        """The happy path in one step: save, submit, approve, merge (each may be refused by the state)."""
        self.save(pk, name, n)
        self.submit(pk)
        self.approve(pk)
        self.merge(pk)

    @rule(pk=open_changes)
    def update(self, pk):
        change = ChangeRequest.objects.get(pk=pk)
        try:
            merging.update_change(change.author, change, resolutions=dict.fromkeys(NAMES, "mine"))
        except InvalidState:
            pass

    @rule(pk=open_changes)
    def withdraw(self, pk):
        change = ChangeRequest.objects.get(pk=pk)
        try:
            changes.withdraw_change(change.author, change)
        except InvalidState:
            pass

    @rule(pk=open_changes)
    def abandon(self, pk):
        change = ChangeRequest.objects.get(pk=pk)
        try:
            changes.abandon_change(change.author, change)
        except InvalidState:
            pass

    @invariant()
    def database_and_git_agree(self):
        main = self.store.tip("refs/heads/main")
        for change in ChangeRequest.objects.all():
            assert self.store.tip(change.branch) == change.head_sha, change
            if change.state == "merged":
                assert change.pk in self.merged
                assert self.store.is_ancestor(change.head_sha, main)
                assert self.store.is_ancestor(change.merged_sha, main)
            else:
                assert change.pk not in self.merged
        if main != self.initial:
            assert IndexedRef.objects.get(ref="main").sha == main

    @invariant()
    def every_merge_is_on_main_exactly_once(self):
        main = self.store.tip("refs/heads/main")
        trailers = git_dir(self.store.path, "log", "--merges", "--first-parent", "--format=%(trailers:key=Change-Request,valueonly)", main).split()
        assert sorted(int(t) for t in trailers) == sorted(self.merged)

    @invariant()
    def nothing_outside_models(self):
        for ref in git_dir(self.store.path, "for-each-ref", "--format=%(refname)").splitlines():
            paths = git_dir(self.store.path, "diff", "--name-only", self.initial, ref, "--").splitlines()
            assert all(p.startswith("models/") for p in paths), (ref, paths)


@pytest.mark.django_db(transaction=True)
def test_random_change_request_histories_keep_database_and_git_in_step(analyst, other_analyst, reviewer):
    USERS.update(alice=analyst, bob=other_analyst, rita=reviewer)
    run_state_machine_as_test(ChangeRequests, settings=settings(
        max_examples=10, stateful_step_count=20, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
