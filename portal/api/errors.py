"""One shape for every API error: `{"error": {"code", "message", "field"}}`.

`code` is a stable word for programs (`not_authenticated`, `permission_denied`, `not_found`,
`invalid`, `throttled`, `conflict`, `invalid_state`, ...), `message` a sentence for people, `field`
the request field at fault or null. A conflict (409) also carries `current_sha` and `current`: the
version that is there now, so a client can show it and nothing typed is lost. A validation error with several faults also lists them all in `details`. Django's own
error handlers (portal/views/errors.py) use `error_response` for /api/ paths, so a 404 for an
unknown URL or a 500 from a crash has the same shape as an error raised in a view.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from models_service.errors import Conflict, ServiceError

STATUS_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to do this."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    500: ("server_error", "Something went wrong on our side; it has been logged. Please try again."),
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def error_response(status: int, message: str | None = None) -> JsonResponse:
    """For Django-level errors on /api/ paths (no DRF view was reached, or it crashed)."""
    code, default = STATUS_CODES.get(status, ("error", "The request failed."))
    return JsonResponse(error_body(code, message or default), status=status)


def _flatten(detail: Any, path: str = "") -> list[tuple[str | None, str, str]]:
    """(field path, message, code) for every fault in a DRF error detail, nested or not."""
    if isinstance(detail, dict):
        return [
            item
            for key, value in detail.items()
            for item in _flatten(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(detail, list):
        return [item for value in detail for item in _flatten(value, path)]
    field = None if path in ("", "non_field_errors") else path
    return [(field, str(detail), getattr(detail, "code", None) or "invalid")]


def service_error_response(exc: ServiceError) -> Response:
    """A models_service error: its own status and code; a conflict also carries the current version."""
    extra = exc.details() if isinstance(exc, Conflict) else {}
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return Response(error_body(exc.code, exc.message, exc.field, **extra), status=exc.status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]):
    """DRF's handler, reshaped. Unknown exceptions return None: Django logs them and answers 500."""
    if isinstance(exc, ServiceError):
        return service_error_response(exc)
    if isinstance(exc, DjangoPermissionDenied):
        # A service's refusal: DRF would answer it with its generic text; keep the service's reason.
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError (they serve pages too); DRF does not know it.
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, RecursionError):
        # A JSON body nested thousands deep overflows the parser (json.loads raises RecursionError,
        # not ValueError, so DRF's JSONParser lets it through): bad input, not a server error.
        exc = exceptions.ParseError("The request body nests too deep to be read.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        faults = _flatten(exc.detail)
        field, message, code = faults[0] if faults else (None, "The request is not valid.", "invalid")
        details = {}
        for name, text, _code in faults:
            details.setdefault(name or "non_field_errors", []).append(text)
        response.data = error_body(code, message, field, details=details)
    else:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", None) or STATUS_CODES.get(response.status_code, ("error",))[0]
        if isinstance(exc, exceptions.PermissionDenied) and str(detail).startswith("CSRF Failed"):
            code = "csrf_failed"
        response.data = error_body(code, str(detail) if detail is not None else "The request failed.")
    return response
