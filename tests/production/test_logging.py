"""DMAAS_LOG_FORMAT=json: one JSON object per line with time, level, logger, message, request id."""

from __future__ import annotations

import json
import logging

import pytest

from portal.logging_config import ContextFilter, JsonFormatter, logging_settings, request_id


def _format(record: logging.LogRecord) -> dict:
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_a_json_line_has_time_level_logger_message_and_extras():
    record = logging.makeLogRecord({"name": "runner.runs", "levelno": logging.WARNING, "levelname": "WARNING",
                                    "msg": "run %s late", "args": (4,), "run_id": 4})
    line = _format(record)
    assert line["level"] == "WARNING" and line["logger"] == "runner.runs" and line["message"] == "run 4 late"
    assert line["time"].endswith("Z") and line["run_id"] == 4
    assert "request_id" not in line


def test_the_request_id_is_on_every_line_of_a_request():
    token = request_id.set("abc123")
    try:
        line = _format(logging.makeLogRecord({"msg": "hello"}))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "abc123"


def test_a_traceback_stays_inside_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exc_info"]


@pytest.mark.django_db
def test_responses_carry_a_request_id_and_a_forged_one_is_replaced(client):
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-42.a")["X-Request-ID"] == "lb-42.a"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID='x", "level": "CRITICAL')["X-Request-ID"]
    assert '"' not in forged


def test_plain_stays_the_default_and_json_is_an_option():
    assert logging_settings("INFO", "plain")["handlers"]["console"]["formatter"] == "plain"
    assert logging_settings("INFO", "json")["handlers"]["console"]["formatter"] == "json"
