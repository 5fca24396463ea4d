"""One middleware for what every request and response must carry (RELIABILITY B8, B10, A6).

Install it in settings.MIDDLEWARE right after `django.middleware.security.SecurityMiddleware`:

    "portal.security_headers.SecurityHeadersMiddleware",

Requests
    * A body larger than `DMAAS_MAX_REQUEST_BYTES` (default: Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
      2.5 MB) is refused with 413 from its Content-Length, before anything reads it. DRF reads JSON
      bodies from the stream, past Django's own size check, so without this a 10 MB body is read and
      parsed before a serializer refuses it. The largest legitimate body is a 256 KB model.
    * A body with a Content-Encoding other than identity (gzip, deflate, br) is refused with 415:
      nothing here decompresses request bodies, so a gzip bomb is never expanded.

Responses
    * Content-Security-Policy (unless the view set one): scripts from our own origin only, no inline
      script, no eval, no plugins, no framing, forms posting to our own origin only. The portal's
      templates have no inline script or event-handler attributes (their JS lives in static/), so a
      payload that slips past the template's escaping still does not run. Styles may be inline
      (CodeMirror and the Django admin set style attributes; styles do not run code).
    * Swagger UI (drf-spectacular's view, `DMAAS_CSP_INLINE_SCRIPT_PATHS`) has one inline script of
      its own, server-generated with no user input; its SHA-256 is allowed for that page only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def max_request_bytes() -> int:
    default = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    return int(getattr(settings, "DMAAS_MAX_REQUEST_BYTES", default))


def _refuse(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": code, "message": message, "field": None}}, status=status)
    return HttpResponse(f"<!doctype html><title>{status}</title><p>{message}</p>", status=status,
                        content_type="text/html; charset=utf-8")


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self.check_request(request)
        response = refused or self.get_response(request)
        self.add_headers(request, response)
        return response

    def check_request(self, request: HttpRequest) -> HttpResponse | None:
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding and encoding != "identity":
            return _refuse(request, 415, "unsupported_encoding",
                           "Compressed request bodies are not accepted; send the body uncompressed.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(request, 400, "bad_request", "The Content-Length header is not a number.")
        limit = max_request_bytes()
        if length > limit:
            return _refuse(request, 413, "too_large",
                           f"The request body is larger than {limit // 1024} KB.")
        return None

    def add_headers(self, request: HttpRequest, response: HttpResponse) -> None:
        if "Content-Security-Policy" in response:
            return
        hashes = ""
        inline_paths = getattr(settings, "DMAAS_CSP_INLINE_SCRIPT_PATHS", ("/api/v1/docs/",))
        if request.path in inline_paths and not getattr(response, "streaming", False):
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            digests = [base64.b64encode(hashlib.sha256(body).digest()).decode()
                       for body in INLINE_SCRIPT.findall(response.content)]
            hashes = "".join(f" 'sha256-{d}'" for d in digests)
        response["Content-Security-Policy"] = getattr(settings, "DMAAS_CONTENT_SECURITY_POLICY",
                                                      DEFAULT_POLICY).format(hashes=hashes)
