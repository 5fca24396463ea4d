from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Public: a visitor is invited to log in; a user sees where their roles take them."""
    return render(request, "home.html")
