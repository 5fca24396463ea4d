"""How a page says who may open it: `@page("audit.view", methods=("GET",))`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from models_service.access import POLICY, require


def page(action: str | None = None, methods: Iterable[str] = ("GET",)) -> Callable:
    """A page for logged-in users, allowed by `action` of the policy table (None: any user).

    Checked in the order the API checks: a visitor who is not logged in goes to the login page,
    whatever the method; a user whose roles lack `action` gets 403 with the reason; only then is an
    unsupported method a 405. HEAD is served wherever GET is.
    """
    if action is not None and action not in POLICY:
        raise KeyError(f"no policy for action {action!r}")
    allowed = {method.upper() for method in methods}
    if "GET" in allowed:
        allowed.add("HEAD")

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if action is not None:
                require(request.user, action)
            if request.method not in allowed:
                return HttpResponseNotAllowed(sorted(allowed))
            return view(request, *args, **kwargs)

        wrapper.policy_action = action  # type: ignore[attr-defined]
        return wrapper

    return decorate
