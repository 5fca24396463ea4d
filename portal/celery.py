"""The Celery app: `celery -A portal worker` and `celery -A portal beat` load it.

Its configuration is the CELERY_* settings in portal/settings.py, so the broker, time limits and
acknowledgement policy are set in one place for web, worker and beat.
"""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("dmaas")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Work an analyst waits for (Test my model) has a queue of its own, so a long scheduled run never sits
# in front of it (RELIABILITY.md L3); every worker must consume it (`-Q celery,interactive`, scripts/dev).
app.conf.task_routes = {"runner.tasks.test_model": {"queue": "interactive"}}
app.autodiscover_tasks()

# Celery's Django fixup closes the database connections before and after every task unless this is
# set: a new PostgreSQL connection per node was about 5 ms of a run's per-node overhead (bench/run.py).
# Workers keep their connection instead, as Django does between requests: CONN_MAX_AGE bounds its
# age, and before each task one that failed or aged out is dropped (`_fresh_connections`).
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@task_prerun.connect
def _fresh_connections(task=None, **kwargs):
    """Django's request-start check, before each task: close a connection that broke or aged out
    (with CONN_HEALTH_CHECKS, the next query checks a reused one). Not for eager tasks, which run in
    their caller's transaction (a test's, say)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
