"""The audit log page: filter and read; there is nothing to edit."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from models_service import audit
from portal.forms import AuditFilterForm
from portal.views.decorators import page

PAGE_SIZE = 50


@page("audit.view")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    invalid = form.is_bound and not form.is_valid()
    if invalid:
        entries = audit.entries().none()
    else:
        entries = audit.entries(**(form.filters() if form.is_bound else {}))
    listing = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page_obj": listing, "query": query.urlencode()}
    return render(request, "audit.html", context, status=400 if invalid else 200)
