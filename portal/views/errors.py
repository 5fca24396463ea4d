"""Error pages that say what happened and what to do; JSON in the API's shape under /api/."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults

from portal.api.errors import error_response


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _api(request):
        return error_response(400)
    return defaults.bad_request(request, exception, template_name="400.html")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    # `require` raises PermissionDenied with the reason (e.g. which roles may do this): show it.
    reason = str(exception) if exception and str(exception) else ""
    if _api(request):
        return error_response(403, reason or None)
    return render(request, "403.html", {"reason": reason}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _api(request):
        return error_response(404)
    return render(request, "404.html", {"path": request.path}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context here: the database may be what failed, and the page must still render.
    if _api(request):
        return error_response(500)
    return defaults.server_error(request, template_name="500.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _api(request):
        return error_response(403, "CSRF check failed: send the X-CSRFToken header with session requests.")
    return render(request, "403_csrf.html", status=403)
