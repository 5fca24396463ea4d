"""Schemathesis over every operation of /api/v1/ (RELIABILITY B11), in process through Django's WSGI
app: shared by tests/security/test_schemathesis.py (a few examples per operation, for CI) and
bench/fuzz_api.py (>= 500 each).

The schema is read from the app itself (the admin's bearer token fetches /api/v1/schema/), and each
operation's generated cases are sent with that token and judged by two checks: not_a_server_error
(no 5xx) and response_schema_conformance (a documented status's body matches its schema). Failures
are collected per operation, not raised, so one run reports them all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Operations whose examples would pull the ground from under the run: they revoke the token or
# deactivate the user that authenticates it. Their answers are covered by the access matrix (A1/A5).
SELF_DESTRUCT = {("DELETE", "/api/v1/tokens/{id}"), ("PATCH", "/api/v1/users/{username}"),
                 ("PUT", "/api/v1/users/{username}")}


@dataclass
class OperationResult:
    label: str
    examples: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    other_failures: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def connections_kept() -> Iterator[None]:
    """Django's WSGI handler closes DB connections at each request's end (the test client does not);
    inside a test's transaction that would close the test database under the run."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def load_schema(schema_dict: dict[str, Any], app: Any) -> Any:
    import schemathesis

    schema = schemathesis.openapi.from_dict(schema_dict)
    schema.app = app
    return schema


def run(schema: Any, headers: dict[str, str], max_examples: int, *, seed: int = 0,
        before_each: Callable[[], None] | None = None, only: str = "") -> list[OperationResult]:
    results = []
    for item in schema.get_all_operations():
        operation = item.ok()
        if operation is None or (operation.method.upper(), operation.path) in SELF_DESTRUCT:
            continue
        if only and only not in operation.label:
            continue
        result = OperationResult(operation.label)
        started = time.monotonic()

        one = _prober(operation, result, headers, max_examples, seed, before_each)
        try:
            one()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - generation itself failed
            result.other_failures += 1
            result.failures.append(f"generation: {type(exc).__name__}: {str(exc)[:300]}")
        result.seconds = round(time.monotonic() - started, 2)
        results.append(result)
    return results


def _prober(operation: Any, result: OperationResult, headers: dict[str, str], max_examples: int, seed: int,
            before_each: Callable[[], None] | None) -> Callable[[], None]:
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed == 0,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy())
    def one(case: Any) -> None:
        if before_each:
            before_each()
        result.examples += 1
        try:
            response = case.call(headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - an app crash under WSGI
            result.server_errors += 1
            result.failures.append(f"raised {type(exc).__name__}: {str(exc)[:200]}  <- {_curl(case)}")
            return
        for check, counter in ((not_a_server_error, "server_errors"),
                               (response_schema_conformance, "schema_violations")):
            try:
                case.validate_response(response, checks=[check])
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - a group of failures
                setattr(result, counter, getattr(result, counter) + 1)
                if len(result.failures) < 5:
                    text = " ".join(str(exc).split())[:400]
                    result.failures.append(f"{check.__name__}: {response.status_code} {text}  <- {_curl(case)}")

    return one


def _curl(case: Any) -> str:
    body = getattr(case, "body", None)
    shown = "" if body is None or type(body).__name__ == "NotSet" else f" body={str(body)[:150]}"
    return f"{case.method} {case.formatted_path} query={case.query}{shown}"


def summary(results: list[OperationResult]) -> dict[str, Any]:
    return {
        "operations": len(results),
        "examples": sum(r.examples for r in results),
        "server_errors": sum(r.server_errors for r in results),
        "schema_violations": sum(r.schema_violations for r in results),
        "other_failures": sum(r.other_failures for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
        "failing": {r.label: r.failures for r in results if r.failures},
    }
