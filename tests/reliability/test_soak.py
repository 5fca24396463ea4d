"""L6, the soak (RELIABILITY.md), on the processes production runs: a documented command, never in CI's run.

    DMAAS_RELIABILITY_SOAK_SECONDS=720 DJANGO_ALLOW_ASYNC_UNSAFE=true \\
        .venv/bin/pytest -s -p no:cacheprovider tests/reliability/test_soak.py
    .venv/bin/python bench/reliability.py --only L6 --soak-minutes 12 [--soak-recycle]

scripts/prod itself (tests/production/prod.py) on a PostgreSQL portal database and warehouse and a
private Redis: gunicorn with 2 workers, one Celery worker with its prefork pool of 2 (production's
default) and beat. This process only drives them: hourly runs of 10 models sent back to back as beat
sends them (`fire_schedule`), and, all the while, HTTP calls to gunicorn at a steady rate from 2 clients:
API reads, searches, the editor's checks, saves (a commit each, a new change every 200) with a token,
and pages with a session. A day of hourly runs passes in minutes, so each model's measurement history is
kept at what an hourly schedule's judging reads (`keep_history_as_hourly`): left alone it grows with every
run, and the judging's memory with it, as production's never does.

Sampled from /proc every minute after a warm-up, while the web clients pause and the worker is idle
(its last run finished and judged): VmRSS, PSS and open file descriptors of each gunicorn worker (the
master serves nothing) and of the Celery worker and each of its pool processes. A kind's figure is the
sum over its processes (RSS double-counts the pages a fork shares, PSS does not; both are kept), and
the worst single process is judged too: RSS growth < 10 %, FDs within 5 %, since the warm-up.

Recycling is off by default (DMAAS_PROD_WEB_MAX_REQUESTS=0, DMAAS_WORKER_MAX_TASKS_PER_CHILD=0,
DMAAS_WORKER_MAX_MEMORY_MB=0), so each pid lives through the whole soak and its growth is the leak, not
hidden by a replacement; a process replaced anyway fails the test. DMAAS_RELIABILITY_SOAK_RECYCLE=1
runs production's guards instead (or the values of those variables in this environment): the sums then
say what the host pays, per-process growth covers the processes that lived throughout, and the
replacements are counted.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import itertools
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runner.tasks
from portal import tokens
from portal.broker import redis_transport_options
from runner.models import RUN_FINISHED, Measurement, Run, Schedule
from runner.observe import anomalies
from tests.personas import PASSWORD
from tests.production.prod import ROOT, descendants, live_children, running, scripts_prod
from tests.runner.conftest import commit_to_main, postgres_warehouse  # noqa: F401 - a fixture
from tests.runner.test_runs_workers import _app, current, postgres_portal  # noqa: F401 - a fixture

from .load import Tally, percentile
from .services import record, wait_until

SOAK_SECONDS = float(os.environ.get("DMAAS_RELIABILITY_SOAK_SECONDS", "0"))
RPS = float(os.environ.get("DMAAS_RELIABILITY_SOAK_RPS", "8"))  # HTTP calls a second, all clients together
WEB_WORKERS = int(os.environ.get("DMAAS_RELIABILITY_SOAK_WEB_WORKERS", "2"))
RECYCLE = os.environ.get("DMAAS_RELIABILITY_SOAK_RECYCLE", "0") == "1"
WARMUP = float(os.environ.get("DMAAS_RELIABILITY_SOAK_WARMUP", "60"))  # seconds before the baseline sample
EVERY = float(os.environ.get("DMAAS_RELIABILITY_SOAK_EVERY", "60"))  # seconds between samples
CLIENTS = 2
GUARDS = ("DMAAS_PROD_WEB_MAX_REQUESTS", "DMAAS_PROD_WEB_MAX_REQUESTS_JITTER", "DMAAS_WORKER_MAX_TASKS_PER_CHILD",
          "DMAAS_WORKER_MAX_MEMORY_MB")
MODELS = {f"models/soak_{i}.sql": f"{{{{ config(materialized='table') }}}}\nselect {i} as n\n" for i in range(10)}
# The most measurements of a model the judging reads on an hourly schedule: the newest RECENT and those at
# the same hour on each day of SEASON_WEEKS (runner.observe.record.history_of).
HISTORY = anomalies.RECENT + 7 * anomalies.SEASON_WEEKS
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not SOAK_SECONDS, reason="the soak is a command: set DMAAS_RELIABILITY_SOAK_SECONDS")]


# --------------------------------------------------------------------------- what is measured


def measure(pid: int) -> dict[str, int] | None:
    """RSS and PSS in kB, open file descriptors and child processes (GitPython's `git cat-file` helpers
    would show there) of a process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None

    def kb(text: str, key: str) -> int:
        return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))

    return {"rss": kb(status, "VmRSS"), "anon": kb(status, "RssAnon"), "file": kb(status, "RssFile"),
            "pss": kb(rollup, "Pss"), "fds": fds, "children": len(descendants(pid))}


def processes(web_master: int, worker: int) -> dict[str, list[int]]:
    """The pids measured: gunicorn's workers; the Celery worker and its pool processes."""
    return {"web": live_children(web_master), "worker": [worker, *live_children(worker)]}


def summary(samples: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """A kind's figures from the baseline sample (the first after the warm-up) to the last."""
    base, last = samples[0][kind], samples[-1][kind]

    def total(sample: dict[str, dict[str, int]], key: str) -> int:
        return sum(p[key] for p in sample.values())

    lived = [pid for pid in base if pid in last]  # every pid, with recycling off
    worst = max(((last[pid]["rss"] - base[pid]["rss"]) / base[pid]["rss"], pid) for pid in lived) if lived else (0, 0)
    seen = {pid for sample in samples for pid in sample[kind]}
    # least squares over the samples since the baseline: MB an hour, what a 24 h run would add
    xs = [s["t"] / 3600 for s in samples]
    ys = [total(s[kind], "rss") / 1024 for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return {"rss_kb": [total(base, "rss"), total(last, "rss")], "pss_kb": [total(base, "pss"), total(last, "pss")],
            "fds": [total(base, "fds"), total(last, "fds")],
            "children": [total(base, "children"), total(last, "children")],
            "rss_growth": (total(last, "rss") - total(base, "rss")) / total(base, "rss"),
            "worst_process": {"pid": worst[1], "growth": worst[0],
                              "rss_kb": [base[worst[1]]["rss"], last[worst[1]]["rss"]] if lived else []},
            "processes": len(last), "replaced": len(seen - set(last)), "slope_mb_per_h": slope}


def keep_history_as_hourly() -> int:
    """The soak fires a day's hourly runs in seconds, but a measurement's time is the wall clock, so every
    measurement of the soak is 'the same hour' to the judging, whose history (read, fitted and cached per
    model) would grow with every run, as it never does in production, where an hourly model's judging
    reads at most HISTORY points. Older measurements beyond those are deleted, as the passing weeks would
    leave them out of the read. Returns how many were deleted."""
    deleted = 0
    for name in (Path(path).stem for path in MODELS):
        keep = list(Measurement.objects.filter(model=name).order_by("-measured_at", "-id")
                    .values_list("pk", flat=True)[:HISTORY])
        if len(keep) == HISTORY:
            deleted += Measurement.objects.filter(model=name, measured_at__lte=Measurement.objects.get(
                pk=keep[-1]).measured_at).exclude(pk__in=keep).delete()[1].get("runner.Measurement", 0)
    return deleted


# --------------------------------------------------------------------------- the web side's clients


class Clients:
    """CLIENTS threads calling gunicorn at RPS together, round the call mix, until stopped; `quiet()`
    holds them between calls while a sample is taken."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.tally = Tally()
        self.by_call: dict[str, dict[int, int]] = {}
        self.saves = 0
        self.change = 0
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.open.set()
        self.stop = threading.Event()
        self.busy = 0
        self.jar = http.cookiejar.CookieJar()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.calls = self.mix()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(CLIENTS)]

    # -- requests

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, err.read()[:300]
        except OSError:
            return 0, None

    def page(self, path: str) -> int:
        try:
            with self.browser.open(self.base + path, timeout=60) as response:
                response.read()
                # a page that needs the login and finds none lands on the login page with 200
                return response.status if "/accounts/login/" not in response.url else 401
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return 0

    def log_in(self) -> None:
        login = self.browser.open(self.base + "/accounts/login/", timeout=30).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
        form = urllib.parse.urlencode({"username": "analyst", "password": PASSWORD, "csrfmiddlewaretoken": csrf})
        answer = self.browser.open(urllib.request.Request(self.base + "/accounts/login/", data=form.encode(),
                                                          headers={"Referer": self.base + "/accounts/login/"}),
                                   timeout=30)
        assert urllib.parse.urlsplit(answer.url).path == "/", "the soak's analyst could not log in"

    def open_change(self) -> None:
        status, change = self.api("POST", "/api/v1/changes", {"title": "Soak", "description": "the L6 soak"})
        assert status == 201, (status, change)
        self.change = change["id"]

    def save(self, n: int) -> int:
        with self.lock:
            self.saves += 1
            if self.saves % 200 == 0:  # analysts finish changes: a fresh branch now and then
                self.open_change()
            change = self.change
        # new SQL each time, as an analyst's: a new blob, a new commit
        status, _ = self.api("PUT", f"/api/v1/changes/{change}/models/soak_edit",
                             {"sql": f"select n, {n} as version from {{{{ ref('soak_{n % 10}') }}}}\n",
                              "description": f"Saved by the soak, {n}."})
        return status

    def mix(self) -> list[tuple[str, Callable[[int], int]]]:
        """What analysts do all day, on every kind of web path: the n-th call is mix[n % len(mix)](n)."""
        def ref(n: int) -> str:
            return f"select n, {n} as version from {{{{ ref('soak_{n % 10}') }}}}\n"

        return [
            ("GET /api/v1/changes", lambda n: self.api("GET", "/api/v1/changes")[0]),
            ("GET /api/v1/models", lambda n: self.api("GET", "/api/v1/models")[0]),
            ("GET /api/v1/models/<name>", lambda n: self.api("GET", f"/api/v1/models/soak_{n % 10}")[0]),
            ("GET /api/v1/runs", lambda n: self.api("GET", "/api/v1/runs")[0]),
            ("GET /api/v1/search", lambda n: self.api("GET", f"/api/v1/search?q=soak_{n % 10}")[0]),
            ("POST /api/v1/validate", lambda n: self.api("POST", "/api/v1/validate", {
                "sql": ref(n), "name": "soak_edit", "change": self.change})[0]),
            ("PUT /api/v1/changes/<id>/models/<name>", self.save),
            ("GET /", lambda n: self.page("/")),
            ("GET /changes/", lambda n: self.page("/changes/")),
            ("GET /runs/", lambda n: self.page("/runs/")),
            ("GET /catalog/?q=", lambda n: self.page(f"/catalog/?q=soak_{n % 10}")),
            ("GET /models/<name>/history/", lambda n: self.page(f"/models/soak_{n % 10}/history/")),
        ]

    # -- the loop

    def _loop(self) -> None:
        interval = CLIENTS / RPS
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.open.wait()
            with self.lock:
                if not self.open.is_set():
                    continue
                self.busy += 1
            try:
                n = next(self.counter)
                name, call = self.calls[n % len(self.calls)]
                began = time.monotonic()
                status = call(n)
                self.tally.add(status, time.monotonic() - began)
                with self.lock:
                    self.by_call.setdefault(name, {})
                    self.by_call[name][status] = self.by_call[name].get(status, 0) + 1
            finally:
                with self.lock:
                    self.busy -= 1
            next_at = max(next_at + interval, time.monotonic())  # steady; no burst after a pause or a slow call
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def quiet(self) -> None:
        """Hold the clients between calls: no request in flight in gunicorn while a sample is taken."""
        with self.lock:
            self.open.clear()
        wait_until(lambda: self.busy == 0, 120, "the web clients' calls to end", every=0.02)

    def resume(self) -> None:
        self.open.set()

    def finish(self) -> None:
        self.stop.set()
        self.open.set()
        for thread in self.threads:
            thread.join(90)


# --------------------------------------------------------------------------- the soak


def test_l6_soak(postgres_portal, postgres_warehouse, private_redis, tmp_path, settings, analyst):  # noqa: F811
    commit_to_main(MODELS)
    postgres_warehouse.run("create schema analytics")
    schedule = Schedule.objects.get()
    token = tokens.create_token(analyst, analyst, name="soak", source="cli").raw
    guards = ({name: os.environ[name] for name in GUARDS if os.environ.get(name)} if RECYCLE
              else dict.fromkeys(GUARDS, "0"))
    folder = tmp_path / "prod"
    folder.mkdir()
    env = {"DATABASE_URL": postgres_portal, "DMAAS_WAREHOUSE": postgres_warehouse.url,
           "CELERY_BROKER_URL": private_redis.url, "DMAAS_REPO": str(settings.DMAAS_REPO), "DMAAS_REPO_REMOTE": "",
           "DMAAS_TIME_ZONE": settings.TIME_ZONE, "DMAAS_PROD_SKIP_MIGRATE": "1",
           "DMAAS_PROD_WEB_WORKERS": str(WEB_WORKERS), "DMAAS_PROD_WORKERS": "1", "DMAAS_PROD_CONCURRENCY": "2",
           "DMAAS_API_RATE": "100000/minute", **guards}
    first: dict[str, Any] | None = None
    samples: list[dict[str, Any]] = []
    runs: list[str] = []
    run_seconds: list[float] = []
    trimmed = 0
    with scripts_prod(folder, env) as prod, current(_app("dmaas-soak", broker_url=private_redis.url,
                                                         broker_transport_options=redis_transport_options(7200))):
        health = prod.wait_healthy()
        assert health["status"] == "ok", health
        pids = prod.pids()
        web_master, worker = pids["web"], pids["worker1"]
        wait_until(lambda: len(live_children(web_master)) == WEB_WORKERS and len(live_children(worker)) == 2, 60,
                   "gunicorn's workers and the pool to start", every=0.2)
        # the password again, hashed as production hashes it (the tests' own hasher is MD5, which it refuses)
        subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "dmaas_user", "analyst", "--password-stdin"],
                       input=PASSWORD + "\n", cwd=ROOT, env=prod.env, check=True, capture_output=True, text=True,
                       timeout=60)
        clients = Clients(prod.base, token)
        clients.log_in()
        clients.open_change()
        clients.start()
        slot = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        began = time.monotonic()
        next_sample = began  # after the first run: what the warm-up then adds is kept apart
        try:
            while True:
                slot += dt.timedelta(hours=1)
                sent = time.monotonic()
                runner.tasks.fire_schedule.delay(schedule.pk, slot.isoformat())  # what beat sends
                run = wait_until(lambda slot=slot: Run.objects.filter(schedule=schedule, slot=slot,
                                                                      status__in=RUN_FINISHED).first(), 300,
                                 f"the soak's run of {slot:%d %H:%M} to finish", every=0.1)
                runs.append(run.status)
                run_seconds.append(time.monotonic() - sent)
                if len(runs) % 10 == 0:
                    trimmed += keep_history_as_hourly()
                now = time.monotonic()
                ending = now - began >= SOAK_SECONDS
                if now < next_sample and not ending:
                    continue
                wait_until(lambda run=run: Run.objects.filter(pk=run.pk, judged_at__isnull=False).exists(), 120,
                           "the run's judging task to end", every=0.1)
                clients.quiet()
                try:
                    sample = {"t": round(time.monotonic() - began, 1), "load": os.getloadavg()[0],
                              "calls": clients.tally.count, "runs": len(runs),
                              **{kind: {pid: m for pid in found if (m := measure(pid))}
                                 for kind, found in processes(web_master, worker).items()}}
                finally:
                    clients.resume()
                if first is None:
                    first, next_sample = sample, began + WARMUP
                else:
                    samples.append(sample)
                    next_sample = now + EVERY
                if ending and len(samples) >= 2:
                    break
        finally:
            clients.finish()
        assert running(web_master) and running(worker), prod.logs()[-3000:]
        logs = prod.logs()
    # what the logs say of replacements: gunicorn's own line per recycled worker, and a pool process lost
    # with a task in hand (Celery #5120: a recycled child's last task can be reported lost and run again)
    restarts = {"web_max_requests": logs.count("Autorestarting worker after current request"),
                "worker_lost": logs.count("WorkerLostError")}
    seconds = samples[-1]["t"] - samples[0]["t"]
    figures = {kind: summary(samples, kind) for kind in ("web", "worker")}
    calls, tally = clients.tally.count, clients.tally
    errors = tally.errors
    failed = [status for status in runs if status != "success"]
    mode = ("recycling on (" + (", ".join(f"{k}={v}" for k, v in guards.items()) or "production's defaults") + ")"
            if RECYCLE else "recycling off")
    line = (f"soak {(samples[-1]['t']) / 60:.0f} min ({seconds / 60:.0f} min measured after a "
            f"{samples[0]['t']:.0f} s warm-up), scripts/prod ({WEB_WORKERS} gunicorn workers, 1 Celery worker, "
            f"prefork pool of 2), {mode}: {len(runs)} hourly runs of 10 models ({len(failed)} not successful), "
            f"{calls} HTTP calls at {RPS:g}/s ({errors} errors, p50 {percentile(tally.latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(tally.latencies, 99) * 1000:.0f} ms); load {min(s['load'] for s in samples):.1f}-"
            f"{max(s['load'] for s in samples):.1f}: "
            + "; ".join(f"{kind} RSS {f['rss_kb'][0] / 1024:.0f} -> {f['rss_kb'][-1] / 1024:.0f} MB "
                        f"({f['rss_growth']:+.1%}, {f['slope_mb_per_h']:+.1f} MB/h; worst process "
                        f"{f['worst_process']['growth']:+.1%}), PSS {f['pss_kb'][0] / 1024:.0f} -> "
                        f"{f['pss_kb'][-1] / 1024:.0f} MB, FDs {f['fds'][0]} -> {f['fds'][-1]}, "
                        f"{f['processes']} processes, {f['replaced']} replaced"
                        for kind, f in figures.items())
            + f"; gunicorn workers recycled {restarts['web_max_requests']}, WorkerLostError {restarts['worker_lost']}")
    record("L6", line, seconds=round(samples[-1]["t"], 1), measured_s=round(seconds, 1), warmup_s=samples[0]["t"],
           recycle=RECYCLE, guards=guards, web_workers=WEB_WORKERS, rps=RPS, runs=len(runs), runs_failed=len(failed),
           run_p50_s=round(percentile(run_seconds, 50), 2), calls=calls, errors=errors, statuses=tally.statuses,
           by_call=clients.by_call, saves=clients.saves, measurements_trimmed=trimmed, restarts=restarts, load=[s["load"] for s in samples],
           warmup_sample=first, samples=samples,
           **{f"{kind}_rss_growth": round(f["rss_growth"], 4) for kind, f in figures.items()},
           **{f"{kind}_fds": f["fds"] for kind, f in figures.items()},
           **{f"{kind}_worst_process_growth": round(f["worst_process"]["growth"], 4) for kind, f in figures.items()},
           **{f"{kind}_replaced": f["replaced"] for kind, f in figures.items()},
           **{kind: f for kind, f in figures.items()})
    assert not failed and errors == 0, (failed, tally.statuses, clients.by_call)
    assert set(tally.statuses) <= {200, 201}, clients.by_call
    for kind, f in figures.items():
        if not RECYCLE:
            assert f["replaced"] == 0, f"a {kind} process was replaced with recycling off: {prod.logs()[-3000:]}"
        before, after = f["fds"]
        assert f["rss_growth"] < 0.10 and f["worst_process"]["growth"] < 0.10, (kind, f)
        assert abs(after - before) <= max(2, 0.05 * before), (kind, f)
