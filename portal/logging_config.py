"""Logs: human-readable lines by default, JSON lines with DMAAS_LOG_FORMAT=json.

A JSON line carries `time` (UTC, ISO 8601), `level`, `logger` and `message`, plus `request_id` while a
web request is served (taken from a well-formed `X-Request-ID` header, else generated, and sent back
in the response) and `task_id`/`task_name` inside a Celery task; `exc_info` holds a traceback. Extra
fields given to a logging call (`log.info("...", extra={"run": 4})`) are kept. Every web request
gets one `dmaas.request` line (method, path, status, milliseconds) in JSON mode, where gunicorn's
own access log is left off.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dmaas_request_id", default=None)

# Proxies and load balancers send their own ids; anything else (long, or with odd characters that
# could forge log fields) is replaced by a fresh one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Attributes every LogRecord has: what is left over came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "task_id", "task_name"}
access_log = logging.getLogger("dmaas.request")


def _current_task() -> tuple[str | None, str | None]:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None, None
    task = current_task
    request = getattr(task, "request", None) if task else None
    task_id = getattr(request, "id", None)
    return (str(task_id), str(task.name)) if task_id else (None, None)


class ContextFilter(logging.Filter):
    """Adds the request id and the Celery task (when there is one) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.task_id, record.task_name = _current_task()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "task_id", "task_name"):
            value = getattr(record, name, None)
            if value:
                line[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdMiddleware:
    """Gives each request an id for its log lines and its `X-Request-ID` response header; in JSON
    mode (`log_requests`) also writes one access line per request."""

    log_requests = False  # set from settings.DMAAS_LOG_FORMAT in __init__

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        from django.conf import settings

        self.get_response = get_response
        self.log_requests = getattr(settings, "DMAAS_LOG_FORMAT", "plain") == "json"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = rid
            if self.log_requests:
                access_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
            return response
        finally:
            request_id.reset(token)


def logging_settings(level: str, fmt: str) -> dict[str, Any]:
    """The LOGGING dictionary: one console handler, plain or JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "portal.logging_config.ContextFilter"}},
        "formatters": {
            "plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
            "json": {"()": "portal.logging_config.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # In JSON mode the middleware writes the access line; runserver's own would double it.
            "django.server": {"level": "WARNING" if fmt == "json" else level},
        },
    }
