"""Explore pages (issue 9): a model's explore page, its saved charts, and a saved chart's shareable page.

The panel itself (templates/explore/_panel.html with static/explore/explore.js) is self-contained: it
needs `model_name` (and, if known, `columns`) in the context and fetches everything else from the
API (portal/api/explore.py), so the catalog's model page includes the same panel.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from models_service.errors import NotFound
from portal.views.decorators import page
from runner import explore


def _model_or_404(request: HttpRequest, name: str) -> dict:
    try:
        return explore.indexed_model(request.user, name)
    except NotFound as exc:
        raise Http404(exc.message) from None


@page("catalog.view")
def explore_model(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    return render(request, "explore/page.html", {"model": model, "model_name": model["name"],
                                                 "columns": model["columns"], "explore_enabled": True})


@page("catalog.view")
def model_charts(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    charts = explore.charts_of(request.user, model["name"])
    return render(request, "explore/charts.html", {"model": model, "charts": charts})


@page("catalog.view")
def chart_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        chart = explore.get_chart(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from None
    definition = {"kind": chart.kind, "x": chart.x, "bucket": chart.bucket, "y": chart.y, "group_by": chart.group_by,
                  "aggregate": chart.aggregate, "filters": chart.filters, "title": chart.title, "id": chart.pk,
                  "model": chart.model}
    return render(request, "explore/chart.html", {"chart": chart, "definition": definition,
                                                  "may_change": explore.may_change(request.user, chart)})
