"""Deploys whose worker died, and tasks sent after the broker was down (runner.deploy.reconcile,
runner.jobs.send_later): the reconciler's decisions, through the task bodies on DuckDB.

A dead worker is what a SIGKILL leaves: the deployment "running", its heartbeat old. The real kill,
on worker processes and a private Redis, is tests/reliability/test_faults_deploy.py (RELIABILITY F1).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading

import pytest
import redis
from celery import Celery
from django.db import transaction
from django.utils import timezone

from models_service.models import ChangeRequest
from runner import deploy, jobs, tasks
from runner.models import Deployment, OutboxTask
from tests.runner.conftest import commit_to_main
from tests.runner.test_runs_workers import _app, current, redis_broker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
OLD = "{{ config(materialized='table') }}\nselect 1 as id\n"
NEW = "{{ config(materialized='table') }}\nselect 1 as id union all select 2\n"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int]]:
    """The messages the code sends, in order (the broker's side is the reliability suite's)."""
    out: list[tuple[str, int]] = []
    for name in ("deploy", "merge_approved", "drop_ci_schema"):
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda pk, name=name: out.append((name, pk)))
    return out


def _merged(analyst) -> ChangeRequest:
    commit_to_main({"models/one.sql": OLD})
    sha = commit_to_main({"models/one.sql": NEW}, "Merge change: one gets 2 rows")
    return ChangeRequest.objects.create(title="one", author=analyst, state="merged", merged_sha=sha)


def _left_by_a_dead_worker(deployment: Deployment, attempts: int, beat_ago: float) -> None:
    """What a worker SIGKILLed mid-deploy leaves: its row running, no beat since."""
    beat = timezone.now() - dt.timedelta(seconds=beat_ago)
    Deployment.objects.filter(pk=deployment.pk).update(status="running", worker="gone@host:1:1", attempts=attempts,
                                                       started_at=beat, heartbeat_at=beat)


def test_a_deploy_whose_worker_stopped_beating_is_queued_again_and_deployed_once(analyst, duck, sent):
    with transaction.atomic():
        deployment = deploy.request_deploy(_merged(analyst))
    assert sent == [("deploy", deployment.pk)]
    _left_by_a_dead_worker(deployment, attempts=1, beat_ago=120)

    got = tasks.reconcile()
    assert (got["deploys_requeued"], got["deploys_failed"]) == (1, 0)
    assert sent[-1] == ("deploy", deployment.pk) and len(sent) == 2
    row = Deployment.objects.get(pk=deployment.pk)
    assert row.status == "queued" and "gone@host:1:1 stopped mid-deploy" in row.message
    assert deploy.reconcile()["deploys_requeued"] == 0  # queued, not running: nothing more to do

    assert tasks.deploy(deployment.pk) == "deployed"
    row = Deployment.objects.get(pk=deployment.pk)
    assert (row.status, row.attempts, row.message) == ("deployed", 2, "")
    assert row.worker.endswith(f":{os.getpid()}:{threading.get_ident()}") and row.heartbeat_at
    assert duck.rows("select count(*) from analytics.one") == [(2,)]
    assert tasks.deploy(deployment.pk) == "deployed"  # the broker's own redelivery, later: nothing redone
    assert Deployment.objects.get(pk=deployment.pk).attempts == 2 and Deployment.objects.count() == 1


def test_a_beating_deploy_is_left_alone_a_dead_one_fails_after_three_deaths_and_none_runs_past_its_limit(
        analyst, duck, sent, settings):
    settings.CELERY_TASK_TIME_LIMIT = 600
    deployment = deploy.request_deploy(_merged(analyst))
    _left_by_a_dead_worker(deployment, attempts=1, beat_ago=10)  # a live worker, beating
    assert deploy.reconcile() == {"deploys_requeued": 0, "deploys_failed": 0, "deploys_resent": 0}

    _left_by_a_dead_worker(deployment, attempts=3, beat_ago=120)
    assert deploy.reconcile()["deploys_failed"] == 1
    row = Deployment.objects.get(pk=deployment.pk)
    assert row.status == "failed" and "stopped 3 times" in row.message and row.finished_at

    # beating, but running past the task's hard limit (600 s) plus a minute: it cannot be alive for real
    Deployment.objects.filter(pk=deployment.pk).update(status="running", started_at=timezone.now()
                                                       - dt.timedelta(seconds=661), heartbeat_at=timezone.now())
    assert deploy.reconcile()["deploys_failed"] == 1
    row = Deployment.objects.get(pk=deployment.pk)
    assert row.status == "failed" and "past its time limit" in row.message
    assert Deployment.objects.filter(status="running").count() == 0


def test_a_queued_deploy_whose_message_was_lost_is_sent_again(analyst, duck, sent, settings):
    settings.DMAAS_NODE_LOST_SECONDS = 600
    deployment = deploy.request_deploy(_merged(analyst))
    assert deploy.reconcile()["deploys_resent"] == 0  # just queued
    Deployment.objects.filter(pk=deployment.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=11))
    assert deploy.reconcile()["deploys_resent"] == 1
    assert deploy.reconcile()["deploys_resent"] == 0  # once per period, not at every pass
    assert sent.count(("deploy", deployment.pk)) == 2


def test_the_heartbeat_beats_a_running_row_and_stops_with_the_job(analyst, duck, sent):
    deployment = deploy.request_deploy(_merged(analyst))
    _left_by_a_dead_worker(deployment, attempts=1, beat_ago=120)
    old = Deployment.objects.get(pk=deployment.pk).heartbeat_at
    with jobs.Heartbeat(Deployment, deployment.pk, 0.05):
        wait_for(lambda: Deployment.objects.get(pk=deployment.pk).heartbeat_at > old, 10, "a beat")
    assert deploy.reconcile()["deploys_requeued"] == 0


# --------------------------------------------------------------------------- the outbox (receivers.py)


def _unreachable() -> Celery:
    """A broker that refuses connections (nothing listens on the port): what a Redis outage looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return _app("dmaas-down", broker_url=f"redis://127.0.0.1:{port}/0", broker_connection_timeout=1)


@pytest.mark.redis
def test_a_task_sent_with_the_broker_down_waits_in_the_outbox_and_goes_once_it_answers(analyst, redis_url):
    with current(_unreachable()):
        with transaction.atomic():
            jobs.send_later(tasks.drop_ci_schema, 41)
            jobs.send_later(tasks.drop_ci_schema, 41)  # asked twice in one move: one message
        row = OutboxTask.objects.get()
        assert (row.task, row.arg, row.attempts) == ("runner.tasks.drop_ci_schema", 41, 1)
        assert row.last_error
        assert jobs.resend_outbox() == 0 and OutboxTask.objects.get().attempts == 2  # still down
    with redis_broker(redis_url) as (app, prefix):
        assert tasks.reconcile()["resent"] >= 1
        assert redis.Redis.from_url(redis_url).llen(f"{prefix}celery") == 1
    assert OutboxTask.objects.count() == 0


def test_a_rolled_back_move_sends_nothing_and_a_sent_one_leaves_no_row(analyst, sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        jobs.send_later(tasks.merge_approved, 7)
        raise RuntimeError("the move failed")
    assert OutboxTask.objects.count() == 0 and sent == []
    with transaction.atomic():
        jobs.send_later(tasks.merge_approved, 7)
        assert sent == []  # not before the commit
    assert sent == [("merge_approved", 7)] and OutboxTask.objects.count() == 0


def test_an_outbox_row_whose_sender_died_before_sending_is_sent_by_the_reconciler(analyst, sent):
    OutboxTask.objects.create(task="runner.tasks.merge_approved", arg=9)  # committed, never sent
    assert jobs.resend_outbox() == 0  # it may still be on its way: left for a minute
    OutboxTask.objects.update(created_at=timezone.now() - dt.timedelta(minutes=2))
    assert jobs.resend_outbox() == 1 and sent == [("merge_approved", 9)]
    assert OutboxTask.objects.count() == 0
