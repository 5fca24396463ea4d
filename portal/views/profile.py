"""The profile page: your roles, your API tokens (create, shown once; revoke), password change."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from models_service.access import can, permissions_of
from portal import tokens
from portal.forms import TokenForm
from portal.views.decorators import page

SOURCE = "page"


@never_cache
@page(methods=("GET", "POST"))
def profile(request: HttpRequest) -> HttpResponse:
    """GET shows the page; POST creates a token and shows it on this one answer, never again.

    No redirect after the POST: the raw token would have to be kept somewhere (the session) to
    survive it, and it is kept nowhere.
    """
    issued = None
    form = TokenForm()
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                issued = tokens.create_token(
                    request.user,
                    request.user,
                    name=form.cleaned_data["name"],
                    days=form.cleaned_data["days"],
                    source=SOURCE,
                )
                form = TokenForm()
            except ValidationError as exc:
                form.add_error(None, exc)
    context = {
        "form": form,
        "issued": issued,
        "tokens": tokens.tokens_visible_to(request.user).filter(user=request.user),
        "may_create_tokens": can(request.user, "token.manage_own"),
        "permissions": permissions_of(request.user),
        "now": timezone.now(),
    }
    status = 400 if request.method == "POST" and not issued else 200
    return render(request, "profile.html", context, status=status)


@page(methods=("POST",))
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own here, admins included: anyone's tokens are managed in the API and the admin.
    token = get_object_or_404(tokens.tokens_visible_to(request.user).filter(user=request.user), pk=pk)
    if tokens.revoke_token(request.user, token, source=SOURCE):
        messages.success(request, f"Token “{token.name}” ({token.display}) is revoked.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("profile")
