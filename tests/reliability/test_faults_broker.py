"""Faults of the broker (RELIABILITY.md F3, F4, L7) on a private Redis with AOF, stopped and restarted
by the tests (the machine's shared Redis is never touched).

F4: Redis down, an analyst keeps saving over the API: every save is a commit and a 2xx; the CI build
it asks for waits in its row (runner/jobs.py: the row is the outbox) and the reconciler sends it once
Redis answers. /healthz?full=1 shows the broker down meanwhile. An approval made while Redis is down
waits in the outbox (runner.models.OutboxTask) and is merged and deployed once, after it answers.
F3 / L7: tasks queued while no worker runs (F3: Redis restarted under them; L7: 1,000 of them), then
drained by real `celery -A portal worker` processes: each effect exactly once.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from models_service.models import ChangeRequest
from portal.views import health
from runner import runs, tasks
from runner.jobs import UNSENT
from runner.models import CIBuild, Deployment, OutboxTask
from tests.api.conftest import client_for
from tests.api.test_changes_api import ORDERS, open_change, put_model
from tests.runner.conftest import duck  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import _app, current, worker

from .services import record, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
OUTAGE_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_F4_SECONDS", "5"))


def _commits(repo, *ref: str) -> int:
    out = subprocess.run(["git", "--git-dir", str(repo), "rev-list", "--count", *ref], capture_output=True,
                         text=True, check=True).stdout
    return int(out)


def test_f4_saves_succeed_with_the_broker_down_and_the_outbox_drains_after(analyst, private_redis, repo,
                                                                           settings):
    settings.CELERY_BROKER_URL = private_redis.url
    settings.DMAAS_HEALTH_CACHE_SECONDS = 0
    client = client_for(analyst)
    with current(_app("dmaas-f4", broker_url=private_redis.url)):
        change = open_change(client)
        sha = put_model(client, change["id"], "orders", ORDERS, expect=201).json()["sha"]
        assert client.post(f"/api/v1/changes/{change['id']}/submit").status_code == 200
        queued_before = private_redis.client().llen("celery")
        assert queued_before == 1  # the submitted change's CI build

        private_redis.stop()
        health.forget_report()
        broker = client.get("/healthz?full=1")
        down_state = broker.json()["components"]["broker"]["status"]
        overall_down = broker.json()["status"]
        began, saves, slowest = time.monotonic(), 0, 0.0
        statuses = []
        while time.monotonic() - began < OUTAGE_SECONDS or saves < 3:
            t0 = time.monotonic()
            body = ORDERS | {"sql": f"select {saves + 2} as order_id, 'paid' as status\n", "base_sha": sha}
            response = put_model(client, change["id"], "orders", body)
            slowest = max(slowest, time.monotonic() - t0)
            statuses.append(response.status_code)
            if response.status_code in (200, 201):
                sha = response.json()["sha"]
            saves += 1
        branch = ChangeRequest.objects.get(pk=change["id"]).branch
        commits_on_branch = _commits(repo, branch) - _commits(repo, "refs/heads/main")
        waiting = list(CIBuild.objects.filter(change_id=change["id"], status="queued"))

        private_redis.start()
        recovered = time.monotonic()
        resent = runs.reconcile()["resent"]
        drained_in = time.monotonic() - recovered
        health.forget_report()
        up_state = client.get("/healthz?full=1").json()["components"]["broker"]["status"]
        queued_after = private_redis.client().llen("celery")

    lost = saves - statuses.count(200)
    record("F4", f"Redis down {OUTAGE_SECONDS:.0f} s: {saves} saves, {statuses.count(200)} x 200, {lost} lost, "
                 f"slowest {slowest:.2f} s; outbox {len(waiting)} build(s) waiting, {resent} sent "
                 f"{drained_in:.2f} s after recovery; health broker {down_state} ({overall_down} overall) -> {up_state}",
           saves=saves, ok=statuses.count(200), lost=lost, slowest_s=round(slowest, 3), resent=resent,
           drained_s=round(drained_in, 3), health_down=down_state, health_up=up_state)
    assert statuses == [200] * saves, statuses
    assert commits_on_branch == saves + 1  # the first save and every save of the outage: none lost
    assert [(b.sha, b.message) for b in waiting] == [(sha, UNSENT)]  # the newest head's build, marked
    assert resent == 1 and queued_after == 2  # the first build's message and the re-sent one
    assert CIBuild.objects.get(pk=waiting[0].pk).message == ""
    assert down_state == "error" and overall_down == "degraded" and up_state == "ok"
    assert slowest < 5


def test_f4_an_approval_with_the_broker_down_is_kept_and_merged_once_it_answers(
        analyst, reviewer, duck, private_redis, repo, settings):  # noqa: F811
    """receivers.on_moved used to send merge_approved with a bare .delay: with Redis down the approval
    was recorded and the merge never came. It now waits in the outbox (runner.jobs.send_later)."""
    settings.CELERY_BROKER_URL = private_redis.url
    author, approver = client_for(analyst), client_for(reviewer)
    with current(_app("dmaas-f4-merge", broker_url=private_redis.url)) as app:
        change = open_change(author)
        put_model(author, change["id"], "orders", ORDERS, expect=201)
        assert author.post(f"/api/v1/changes/{change['id']}/submit").status_code == 200
        private_redis.client().delete("celery")  # the CI build's message: this case is about the merge

        private_redis.stop()
        t0 = time.monotonic()
        approved = approver.post(f"/api/v1/changes/{change['id']}/approve", {}, format="json")
        approve_s = time.monotonic() - t0
        waiting = list(OutboxTask.objects.values_list("task", "attempts"))
        state_down = ChangeRequest.objects.get(pk=change["id"]).state
        assert runs.reconcile()["resent"] == 0  # still down: it stays

        private_redis.start()
        recovered = time.monotonic()
        resent = tasks.reconcile()["resent"]
        with worker(app):
            wait_until(lambda: Deployment.objects.filter(change_id=change["id"], status="deployed").exists(), 60,
                       "the merge and its deploy")
            merged_in = time.monotonic() - recovered
            time.sleep(1)  # a second merge or deploy would show now
    merged = ChangeRequest.objects.get(pk=change["id"])
    merges = _commits(repo, "--first-parent", "refs/heads/main") - 1  # main's first commit is the portal's own
    deployments = Deployment.objects.filter(change_id=change["id"]).count()
    record("F4-merge", f"Redis down: approval {approved.status_code} in {approve_s:.2f} s, "
                       f"{len(waiting)} merge waiting in the outbox; Redis back: {resent} sent, merged and deployed "
                       f"{merged_in:.1f} s after, {merges} merge commit, {deployments} deployment",
           approve_status=approved.status_code, approve_s=round(approve_s, 3), resent=resent,
           merged_s=round(merged_in, 2), merges=merges, deployments=deployments)
    assert approved.status_code == 200, approved.content
    assert state_down == "approved" and waiting == [("runner.tasks.merge_approved", 1)]
    assert resent == 1 and merged.state == "merged" and merged.merged_sha
    assert (merges, deployments) == (1, 1)
    assert OutboxTask.objects.filter(task="runner.tasks.merge_approved").count() == 0
