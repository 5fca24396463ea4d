"""The Celery app: `celery -A portal worker` and `celery -A portal beat` load it.

Its configuration is the CELERY_* settings in portal/settings.py, so the broker, time limits and
acknowledgement policy are set in one place for web, worker and beat.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("dmaas")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Work an analyst waits for (Test my model) has a queue of its own, so a long scheduled run never sits
# in front of it (RELIABILITY.md L3); every worker must consume it (`-Q celery,interactive`, scripts/dev).
app.conf.task_routes = {"runner.tasks.test_model": {"queue": "interactive"}}
app.autodiscover_tasks()
