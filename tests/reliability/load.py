"""Load drivers of the reliability suite, shared by the short CI cases and bench/reliability.py's long ones:
a steady-rate HTTP driver (threads, each client on a token of its own), GET, POST and PUT with a token,
and percentiles."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    late: list[float] = field(default_factory=list)  # how long after its planned time each call started
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, seconds: float, late: float = 0.0) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.late.append(late)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)


def get(url: str, token: str, timeout: float = 10) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, dict(err.headers)
    except (OSError, urllib.error.URLError):
        return 0, {}


def post(url: str, token: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    """POST `body` as JSON; (status, response body). Status 0: no answer (refused, reset, timed out)."""
    return send("POST", url, token, body, timeout)


def put(url: str, token: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    """PUT `body` as JSON; (status, response body), as `post`."""
    return send("PUT", url, token, body, timeout)


def send(method: str, url: str, token: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def steady(call: Callable[[int], int], *, rps: float, seconds: float, clients: int) -> tuple[Tally, float]:
    """`clients` threads, together `rps` calls a second for `seconds` (open loop: each call at its time,
    late calls are not dropped). `call(client)` returns the HTTP status. Returns the tally and the
    achieved rate. A call that starts late (`tally.late`) means the clients could not keep up: the
    server answered slowly, or this process (the load generator) ran out of CPU."""
    tally = Tally()
    per_client = rps / clients
    began = time.monotonic()

    def client(i: int) -> None:
        n = 0
        while True:
            at = began + (n + i / clients) / per_client
            if at - began >= seconds:
                return
            pause = at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            t0 = time.monotonic()
            status = call(i)
            tally.add(status, time.monotonic() - t0, max(0.0, t0 - at))
            n += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, tally.count / max(time.monotonic() - began, 1e-9)
