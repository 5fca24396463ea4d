"""Latency and resets between the services (RELIABILITY.md F8), through tests/reliability/proxy.py's
TCP fault proxy (Toxiproxy's server cannot be installed here).

Redis: the portal (this process, over the API) and a worker (in-process, real Celery) reach a private
Redis only through the proxy. With 2 s of latency an analyst's saves are slower but succeed, and the
approval is merged and deployed once. With every connection reset (and new ones refused) saves and
the approval still answer 200; the outbox (job rows, runner.models.OutboxTask) sends again once the
proxy heals, and each effect happens once.

The PostgreSQL warehouse: a worker builds an incremental model through the proxy. Latency from the
middle of the model on slows the run and changes nothing else. Its connection reset mid-query: the
node fails with the driver's words (no traceback), is retried as transient and appends its rows once.
With the warehouse not answering at all, the connection times out, is retried, and the node ends
with that timeout in plain words.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import psycopg
import pytest

import runner.tasks
from models_service.models import ChangeRequest
from runner import tasks
from runner import warehouse as wh
from runner.engine.adapters.postgres import CONNECT_TIMEOUT, PostgresAdapter
from runner.models import CIBuild, Deployment, NodeRun, OutboxTask, ReviewPolicy, Schedule
from tests.api.conftest import client_for
from tests.api.test_changes_api import ORDERS, open_change, put_model
from tests.runner.conftest import Warehouse, commit_to_main, duck, postgres_warehouse  # noqa: F401 - fixtures
from tests.runner.test_runs_workers import (
    TEMPORARY,
    _app,
    _sleeping_backends,
    current,
    filesystem_broker,
    finished_run,
    worker,
)

from .proxy import FaultProxy
from .services import record, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]
LATENCY = 2.0
SAVES = 3
WAREHOUSE_LATENCY = 0.5  # per answer from the warehouse; a node makes a few dozen round trips


def _commits(repo, *ref: str) -> int:
    out = subprocess.run(["git", "--git-dir", str(repo), "rev-list", "--count", *ref], capture_output=True,
                         text=True, check=True).stdout
    return int(out)


def _save(client, change_id: int, i: int, sha: str) -> tuple[int, float, str]:
    t0 = time.monotonic()
    body = ORDERS | {"sql": f"select {i + 2} as order_id, 'paid' as status\n", "base_sha": sha}
    response = put_model(client, change_id, "orders", body)
    took = time.monotonic() - t0
    return response.status_code, took, response.json().get("sha", sha) if response.status_code == 200 else sha


def _effects(change_id: int, repo) -> dict[str, int]:
    """What happened once or more: merges on main, deployments and their attempts, builds per head."""
    builds = list(CIBuild.objects.filter(change_id=change_id).values_list("sha", flat=True))
    deployments = list(Deployment.objects.filter(change_id=change_id))
    return {"merges": _commits(repo, "--first-parent", "refs/heads/main") - 1,
            "deployments": len(deployments), "deploy_attempts": sum(d.attempts for d in deployments),
            "builds_per_head": max((builds.count(s) for s in builds), default=0),
            "outbox": OutboxTask.objects.count()}


@pytest.fixture
def through_proxy(private_redis, settings):
    """The broker (the portal's sends and the worker's) is the private Redis behind a fault proxy;
    people approve (the auto-approval policy is off, so the approval is the reviewer's)."""
    ReviewPolicy.current()
    ReviewPolicy.objects.update(enabled=False)
    with FaultProxy("127.0.0.1", private_redis.port) as proxy:
        url = proxy.url(private_redis.url)
        settings.CELERY_BROKER_URL = url
        with current(_app("dmaas-f8", broker_url=url)) as app:
            yield proxy, app


def _submitted(client) -> tuple[int, str]:
    change = open_change(client)
    sha = put_model(client, change["id"], "orders", ORDERS, expect=201).json()["sha"]
    assert client.post(f"/api/v1/changes/{change['id']}/submit").status_code == 200
    return change["id"], sha


def test_f8_two_seconds_of_redis_latency_slow_saves_and_duplicate_nothing(
        analyst, reviewer, duck, through_proxy, repo):  # noqa: F811
    proxy, app = through_proxy
    author, approver = client_for(analyst), client_for(reviewer)
    with worker(app):
        change_id, sha = _submitted(author)
        proxy.latency = LATENCY
        saves = []
        for i in range(SAVES):
            status, took, sha = _save(author, change_id, i, sha)
            saves.append((status, took))
        branch = ChangeRequest.objects.get(pk=change_id).branch
        commits = _commits(repo, branch) - _commits(repo, "refs/heads/main")
        t0 = time.monotonic()
        approved = approver.post(f"/api/v1/changes/{change_id}/approve", {}, format="json")
        approve_s = time.monotonic() - t0
        wait_until(lambda: Deployment.objects.filter(change_id=change_id, status__in=("deployed", "failed")).exists(),
                   120, "the merge and its deploy through the slow broker", every=0.5)
        tasks.reconcile()  # beat's pass, under latency too: nothing to send again
        time.sleep(2 * LATENCY)  # a duplicate message would be taken now
    got = _effects(change_id, repo)
    slowest = max(t for _, t in saves)
    record("F8-redis-latency", f"{LATENCY:.0f} s latency to Redis: {len(saves)} saves, "
                               f"{sum(s == 200 for s, _ in saves)} x 200 (slowest {slowest:.1f} s), approval "
                               f"{approved.status_code} in {approve_s:.1f} s; {got['merges']} merge, "
                               f"{got['deployments']} deployment ({got['deploy_attempts']} attempt), "
                               f"builds per head {got['builds_per_head']}, {got['outbox']} left in the outbox",
           latency_s=LATENCY, saves=len(saves), slowest_s=round(slowest, 2), approve_s=round(approve_s, 2), **got)
    assert [s for s, _ in saves] == [200] * SAVES and approved.status_code == 200, approved.content
    assert commits == SAVES + 1  # the first save and each slow one: a commit each, none twice
    assert got == {"merges": 1, "deployments": 1, "deploy_attempts": 1, "builds_per_head": 1, "outbox": 0}
    assert Deployment.objects.get(change_id=change_id).status == "deployed"


def test_f8_redis_connections_reset_the_outbox_sends_again_and_each_effect_happens_once(
        analyst, reviewer, duck, through_proxy, repo):  # noqa: F811
    proxy, app = through_proxy
    author, approver = client_for(analyst), client_for(reviewer)
    with worker(app):
        change_id, sha = _submitted(author)
        wait_until(lambda: CIBuild.objects.filter(change_id=change_id, status="passed").exists(), 60,
                   "the first build")
        proxy.refusing = True  # every open connection reset, every new one too
        reset_at = time.monotonic()
        saves = []
        for i in range(SAVES):
            status, took, sha = _save(author, change_id, i, sha)
            saves.append((status, took))
        approved = approver.post(f"/api/v1/changes/{change_id}/approve", {}, format="json")
        waiting = {"builds": CIBuild.objects.filter(change_id=change_id, status="queued").exclude(message="").count(),
                   "outbox": OutboxTask.objects.count()}
        proxy.refusing = False
        healed = time.monotonic()
        resent = 0

        def deployed() -> bool:
            nonlocal resent
            resent += tasks.reconcile()["resent"]  # beat's reconciler
            return Deployment.objects.filter(change_id=change_id, status__in=("deployed", "failed")).exists()

        wait_until(deployed, 90, "the merge and its deploy after the resets", every=1)
        recovered_s = time.monotonic() - healed
        time.sleep(2)
    got = _effects(change_id, repo)
    record("F8-redis-reset", f"Redis connections reset ({proxy.resets} resets over {healed - reset_at:.1f} s): "
                             f"{len(saves)} saves {sum(s == 200 for s, _ in saves)} x 200, approval "
                             f"{approved.status_code}; waiting: {waiting['builds']} build, {waiting['outbox']} "
                             f"merge; healed: {resent} sent, deployed {recovered_s:.1f} s after; "
                             f"{got['merges']} merge, {got['deployments']} deployment ({got['deploy_attempts']} "
                             f"attempt), builds per head {got['builds_per_head']}",
           resets=proxy.resets, resent=resent, recovered_s=round(recovered_s, 2), **got)
    assert [s for s, _ in saves] == [200] * SAVES and approved.status_code == 200, approved.content
    assert proxy.resets >= 1 and waiting == {"builds": 1, "outbox": 1}
    assert resent >= 2
    assert got == {"merges": 1, "deployments": 1, "deploy_attempts": 1, "builds_per_head": 1, "outbox": 0}
    assert Deployment.objects.get(change_id=change_id).status == "deployed"


# --------------------------------------------------------------------------- the PostgreSQL warehouse

# Appends the ids it does not have yet, the ordinary way: production runs compile main before the
# table exists in their eyes, and the engine renders is_incremental() for what it finds at build time.
EVENTS = ("{{ config(materialized='incremental') }}\n"
          "select g as id from generate_series(1, 20) g\n"
          "cross join (select pg_sleep(delay) as nothing from control.knobs) as waiting\n"
          "{% if is_incremental() %}where g > (select max(id) from {{ this }}){% endif %}\n")


@pytest.fixture
def warehouse_through_proxy(postgres_warehouse, settings):  # noqa: F811
    w = postgres_warehouse
    w.run("create schema control", "create table control.knobs (delay float)", "insert into control.knobs values (3)",
          "create schema analytics", "create table analytics.events as select g as id from generate_series(1, 10) g")
    with FaultProxy.for_url(w.url) as proxy:
        settings.DMAAS_WAREHOUSE = proxy.url(w.url)
        wh.forget_warehouses()
        yield proxy, w
        wh.forget_warehouses()


def test_f8_warehouse_connection_reset_mid_model_fails_clearly_retries_and_appends_once(
        warehouse_through_proxy, tmp_path):
    proxy, w = warehouse_through_proxy
    commit_to_main({"models/events.sql": EVENTS})
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC)
    with filesystem_broker(tmp_path) as app, worker(app):
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        wait_until(lambda: _sleeping_backends(w.url), 30, "the model's query to run in the warehouse", every=0.1)
        w.run("update control.knobs set delay = 0")  # the next attempt is fast
        reset = proxy.reset()
        first_error = wait_until(lambda: NodeRun.objects.filter(name="events", attempts=1, status="queued").first(),
                                 30, "the first attempt to fail").message
        run = finished_run(schedule, slot, 60)
    wait_until(lambda: not _sleeping_backends(w.url), 30, "the cut query to end", every=0.5)
    node = NodeRun.objects.get(run=run, name="events")
    rows, distinct = w.rows("select count(*), count(distinct id) from analytics.events")[0]
    leftovers = w.rows(f"select table_name from information_schema.tables where table_name like '{TEMPORARY}'")
    record("F8-warehouse-reset", f"warehouse connection reset mid-model ({reset} open): attempt 1 failed "
                                 f"({first_error[:110]!r}), {node.status} on attempt {node.attempts}, "
                                 f"{rows} rows, {rows - distinct} duplicates, {len(leftovers)} temporary relations",
           resets=reset, first_error=first_error, attempts=node.attempts, rows=rows, duplicates=rows - distinct,
           leftovers=len(leftovers))
    assert reset >= 1
    assert "trying again" in first_error and "connection" in first_error.lower(), first_error
    assert "Traceback" not in first_error and 'File "' not in first_error
    assert (run.status, node.status, node.attempts) == ("success", "success", 2), (run.message, node.message)
    assert (rows, distinct) == (20, 20)  # appended once: the cut attempt's rows went with its transaction


def test_f8_warehouse_latency_mid_model_slows_the_run_and_changes_nothing_else(warehouse_through_proxy, tmp_path):
    proxy, w = warehouse_through_proxy
    w.run("update control.knobs set delay = 1")
    commit_to_main({"models/events.sql": EVENTS})
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)
    began = time.monotonic()
    with filesystem_broker(tmp_path) as app, worker(app):
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        wait_until(lambda: _sleeping_backends(w.url), 30, "the model's query to run in the warehouse", every=0.1)
        proxy.latency = WAREHOUSE_LATENCY  # on the open connection, from the middle of the model on
        run = finished_run(schedule, slot, 120)
    took = time.monotonic() - began
    node = NodeRun.objects.get(run=run, name="events")
    rows, distinct = w.rows("select count(*), count(distinct id) from analytics.events")[0]
    record("F8-warehouse-latency", f"{WAREHOUSE_LATENCY:g} s latency to the warehouse from mid-model on: "
                                   f"{node.status} on attempt {node.attempts}, run {run.status} in {took:.1f} s, "
                                   f"{rows} rows, {rows - distinct} duplicates",
           latency_s=WAREHOUSE_LATENCY, attempts=node.attempts, took_s=round(took, 2), rows=rows)
    assert (run.status, node.status, node.attempts) == ("success", "success", 1), node.message
    assert (rows, distinct) == (20, 20)


def test_f8_a_warehouse_that_does_not_answer_times_out_with_a_clear_error(warehouse_through_proxy, tmp_path,
                                                                          settings):
    proxy, w = warehouse_through_proxy
    w.run("update control.knobs set delay = 0")
    settings.DMAAS_WAREHOUSE = proxy.url(w.url) + "?connect_timeout=2"
    wh.forget_warehouses()
    commit_to_main({"models/events.sql": EVENTS})
    schedule = Schedule.objects.get()
    slot = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    proxy.latency = 3600  # connections are accepted, and nothing comes back
    began = time.monotonic()
    with filesystem_broker(tmp_path) as app, worker(app):
        runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())
        run = finished_run(schedule, slot, 90)
    took = time.monotonic() - began
    node = NodeRun.objects.get(run=run, name="events")
    record("F8-warehouse-timeout", f"warehouse not answering: {node.status} after {node.attempts} attempts in "
                                   f"{took:.1f} s ({node.message[:110]!r}), run {run.status}",
           attempts=node.attempts, message=node.message, took_s=round(took, 2))
    assert (node.status, node.attempts, run.status) == ("error", 3, "failed")
    assert "timeout" in node.message.lower() and "Traceback" not in node.message, node.message
    assert w.rows("select count(*) from analytics.events") == [(10,)]  # untouched

    # Without connect_timeout in the URL the adapter's own default (10 s) applies: no endless wait.
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout expired"):
        PostgresAdapter(proxy.url(w.url)).execute("select 1")
    assert time.monotonic() - t0 < CONNECT_TIMEOUT + 5
