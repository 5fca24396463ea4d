"""A worker process SIGKILLed mid-deploy (RELIABILITY.md F1).

A merged change's deploy (runner/deploy.py: `request_deploy` records the Deployment and queues
`runner.tasks.deploy`) is taken by one of two real worker processes on a private Redis; the new
version of the model sleeps in the warehouse (8 s, read from a control table), and the worker that
took it is killed while it does. Its heartbeat stops; the reconciler (beat's `runner.tasks.reconcile`,
called here every half second with DMAAS_DEPLOY_STALE_SECONDS=3) queues the deploy again and the
other worker deploys it. Redis's own redelivery of the unacknowledged message would come only after
its visibility timeout (two hours, the default kept here), so the bound holds whatever kombu does.
"""

from __future__ import annotations

import signal
import time

import pytest
from django.db import transaction

from models_service.models import ChangeRequest
from runner import deploy, tasks
from runner.models import Deployment, NodeRun
from tests.runner.conftest import commit_to_main, postgres_warehouse  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import (
    SLOW_OLD,
    TEMPORARY,
    _sleeping_backends,
    postgres_portal,  # noqa: F401 - a fixture
    worker_process,
)

from .services import record, wait_until
from .workers import PREFIX, executed, sending_to

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
STALE_SECONDS = 3  # the reconciler's patience; workers beat every second (worker_process's settings)
REDELIVERY_BOUND = 30  # seconds from the kill to the deploy finished by the other worker
SLOW_NEW = ("{{ config(materialized='table') }}\n"
            "select g as id from generate_series(1, 20) g\n"
            "cross join (select pg_sleep(delay) as nothing from control.knobs) as waiting\n")


def test_f1_a_worker_killed_mid_deploy_leaves_the_table_old_then_the_reconciler_redeploys_it_once(
        postgres_portal, postgres_warehouse, private_redis, tmp_path, analyst, settings):  # noqa: F811
    settings.DMAAS_DEPLOY_STALE_SECONDS = STALE_SECONDS
    wh = postgres_warehouse
    wh.run("create schema control", "create table control.knobs (delay float)", "insert into control.knobs values (8)",
           "create schema analytics", "create table analytics.slow as select g as id from generate_series(1, 10) g")
    commit_to_main({"models/slow.sql": SLOW_OLD})
    sha = commit_to_main({"models/slow.sql": SLOW_NEW}, "Merge change: slow gets 20 rows")
    change = ChangeRequest.objects.create(title="slow", author=analyst, state="merged", merged_sha=sha)
    common = {"database_url": postgres_portal, "broker_url": private_redis.url, "prefix": PREFIX,
              "warehouse_url": wh.url}
    requeued = 0
    with sending_to(private_redis.url), worker_process(tmp_path, hostname="one", **common) as one, \
            worker_process(tmp_path, hostname="two", **common) as two:
        with transaction.atomic():
            deployment = deploy.request_deploy(change)
        taken = wait_until(lambda: Deployment.objects.filter(pk=deployment.pk, status="running").exclude(worker="")
                           .first(), 30, "a worker to take the deploy", every=0.1)
        wait_until(lambda: _sleeping_backends(wh.url), 30, "the deploy's build to run in the warehouse", every=0.1)
        killed, other = (one, "two") if taken.worker.startswith("one@") else (two, "one")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        killed_at = time.monotonic()
        after_kill = (Deployment.objects.get(pk=deployment.pk).status, wh.rows("select count(*) from analytics.slow"))
        wh.run("update control.knobs set delay = 0")  # the next attempt is fast

        def deployed() -> Deployment | None:
            nonlocal requeued
            requeued += tasks.reconcile()["deploys_requeued"]  # beat's reconciler, often
            return Deployment.objects.filter(pk=deployment.pk, status__in=("deployed", "failed")).first()

        done = wait_until(deployed, REDELIVERY_BOUND + 30, "the deploy to be redone", every=0.5)
        redelivered_in = time.monotonic() - killed_at
        time.sleep(1)  # a duplicate delivered late would show in the logs now
    wait_until(lambda: not _sleeping_backends(wh.url), 30, "the killed worker's query to end", every=0.5)

    rows = wh.rows("select count(*) from analytics.slow")
    leftovers = wh.rows("select table_schema, table_name from information_schema.tables "
                        f"where table_name like '{TEMPORARY}'")
    records = Deployment.objects.filter(change=change).count()
    running = Deployment.objects.filter(status="running").count() + NodeRun.objects.filter(status="running").count()
    runs_to_end = executed(tmp_path, "runner.tasks.deploy")
    record("F1", f"worker SIGKILLed mid-deploy: table {after_kill[1][0][0]} rows (old) while {after_kill[0]}, "
                 f"requeued by the reconciler ({requeued}x, stale after {STALE_SECONDS} s) and {done.status} by "
                 f"the other worker {redelivered_in:.1f} s after the kill (bound {REDELIVERY_BOUND} s), table "
                 f"{rows[0][0]} rows (new), {records} deployment record, {done.attempts} attempts, {runs_to_end} "
                 f"deploy run to its end, {running} left running, {len(leftovers)} temporary relations",
           redelivered_s=round(redelivered_in, 2), requeued=requeued, records=records, attempts=done.attempts,
           running=running, leftovers=len(leftovers))
    assert after_kill == ("running", [(10,)])  # wholly old
    assert done.status == "deployed", done.message
    assert done.worker.startswith(f"{other}@")
    assert redelivered_in < REDELIVERY_BOUND
    assert rows == [(20,)] and leftovers == []  # wholly new, nothing of the killed attempt left
    assert (records, requeued, done.attempts, running, runs_to_end) == (1, 1, 2, 0, 1)
