"""Fire N wrong-password logins at once at one account and report what happened, as JSON.

Run in a fresh interpreter by tests/access/test_lockout.py, against the database the environment
names (DATABASE_URL for PostgreSQL, or the SQLite file under DMAAS_VAR_DIR): each thread is a
Django test client with its own database connection, so the attempts really are concurrent, and
the real password hasher (PBKDF2, ~0.3 s a check) holds each one open long enough to race.

    python -m tests.access.lockout_driver 50
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter

import django


def main(attempts: int) -> dict:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user("target", password="the right password 42")

    checks = Counter()
    lock = threading.Lock()
    real_check = AbstractBaseUser.check_password

    def counting_check(self, raw_password):  # every password that reaches the hasher
        with lock:
            checks["passwords checked"] += 1
        return real_check(self, raw_password)

    AbstractBaseUser.check_password = counting_check
    start = threading.Barrier(attempts)
    statuses: list[int] = []

    def attempt(number: int) -> None:
        client = Client(HTTP_HOST="localhost", REMOTE_ADDR=f"10.0.{number // 250}.{number % 250 + 1}")
        start.wait()
        try:
            response = client.post("/accounts/login/", {"username": "target", "password": f"wrong {number}"})
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    right = Client(HTTP_HOST="localhost").post(
        "/accounts/login/", {"username": "target", "password": "the right password 42"}
    )
    from axes.models import AccessAttempt

    recorded = sum(a.failures_since_start for a in AccessAttempt.objects.filter(username="target"))
    return {
        "statuses": dict(Counter(statuses)),
        "passwords_checked": checks["passwords checked"],
        "right_password_status": right.status_code,
        "axes_failures_recorded": recorded,
        "vendor": connections["default"].vendor,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)))  # noqa: T201
