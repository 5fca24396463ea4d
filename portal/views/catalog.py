"""Catalog pages: search across models, seeds, sources, columns, descriptions, tags and owners; a page
per node (description, columns with their statistics and PII tags, tests, freshness, runs, lineage);
and its lineage, drawn by static/js/lineage.js from the same data the page lists without JS.

Thin, as the other pages: the services (models_service.index.search, runner.catalog.model_detail,
runner.lineage) decide; a bad parameter is the page again with the reason (400), an unknown name 404.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse

from models_service import index
from models_service.access import can
from models_service.errors import InvalidInput, NotFound
from models_service.models import NodeKind
from portal.views.decorators import page
from portal.views.runs import model_section
from runner import catalog, lineage

SNIPPET = 180  # characters of a description shown in a result
KINDS = [("", "Everything"), *NodeKind.choices]


@lru_cache(maxsize=1)
def explore_enabled() -> bool:
    """The explore panel (preview, column profile, charts) shows once its template exists."""
    try:
        get_template("explore/_panel.html")
    except TemplateDoesNotExist:
        return False
    return True


def snippet(text: str, term: str, width: int = SNIPPET) -> str:
    """The part of `text` around the first occurrence of `term` (or its start), about `width` long."""
    text = " ".join((text or "").split())
    if len(text) <= width:
        return text
    at = text.lower().find(term.lower()) if term else -1
    if at < 0:
        return text[:width].rsplit(" ", 1)[0] + " …"
    start = max(0, at - width // 3)
    piece = text[start:start + width]
    return ("… " if start else "") + piece + (" …" if start + width < len(text) else "")


def node_urls(name: str) -> dict[str, str]:
    return {"url": reverse("catalog-node", args=[name]), "lineage_url": reverse("catalog-lineage", args=[name])}


def _or_404(function: Any, user: Any, name: str) -> Any:
    try:
        return function(user, name)
    except NotFound as exc:
        raise Http404(exc.message) from None


# --------------------------------------------------------------------------- search


@page("catalog.view")
def catalog_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "")
    context: dict[str, Any] = {"query": query, "kind": kind, "kinds": KINDS, "results": [], "error": ""}
    try:
        hits = index.search(request.user, query, kind=kind or None, limit=50)
    except InvalidInput as exc:
        context["error"] = exc.message
        return render(request, "catalog/search.html", context, status=400)
    words, _ = index.parse_query(query)
    term = " ".join(words)
    context["results"] = [{
        "hit": hit,
        "node": hit.node,
        "snippet": snippet(hit.node.description, term if hit.reason == "description" else ""),
        "tags": sorted(t.tag for t in hit.node.tags.all()),
        "url": reverse("catalog-node", args=[hit.node.name]),
    } for hit in hits]
    return render(request, "catalog/search.html", context)


# --------------------------------------------------------------------------- one node


@page("catalog.view")
def catalog_node(request: HttpRequest, name: str) -> HttpResponse:
    user = request.user
    detail = _or_404(catalog.model_detail, user, name)
    is_built = detail["kind"] != NodeKind.SOURCE
    context = {
        **detail,
        "runs": model_section(user, name) if is_built and can(user, "run.view") else None,
        "may_edit": detail["kind"] == NodeKind.MODEL and can(user, "model.edit"),
        "history": detail["kind"] == NodeKind.MODEL,
        # For the explore panel (another page family's template): the model and its columns.
        "explore_enabled": detail["kind"] != NodeKind.SOURCE and explore_enabled(),
        "model_name": name,
        # `columns` is the explore panel's brief list; the page's own table reads `column_rows`.
        "columns": [{"name": c["name"], "type": c["type"]} for c in detail["columns"]],
        "column_rows": detail["columns"],
    }
    return render(request, "catalog/node.html", context)


# --------------------------------------------------------------------------- lineage

DEPTHS = list(range(0, lineage.MAX_DEPTH + 1))


def graph_layers(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The graph's nodes by layer, left to right, for the list the page shows without JS."""
    layers: dict[int, list[dict[str, Any]]] = {}
    for node in graph["nodes"]:
        layers.setdefault(node["layer"], []).append(node)
    words = {0: "This node"}
    return [{"layer": k, "label": words.get(k, f"{abs(k)} above" if k < 0 else f"{k} below"), "nodes": v}
            for k, v in sorted(layers.items())]


def with_urls(graph: dict[str, Any]) -> dict[str, Any]:
    for node in graph["nodes"]:
        if node.get("known", True):
            node.update(node_urls(node["name"]))
    return graph


@page("catalog.view")
def catalog_lineage(request: HttpRequest, name: str) -> HttpResponse:
    user = request.user
    node = _or_404(catalog.get_node, user, name)
    column = request.GET.get("column", "").strip()
    context: dict[str, Any] = {"name": name, "kind": node.kind, "depths": DEPTHS, "error": "", "column": column,
                               "column_names": [c.name for c in node.columns.all()]}
    status = 200
    try:
        up = lineage.depth_param(request.GET.get("up"), "up", 2)
        down = lineage.depth_param(request.GET.get("down"), "down", 2)
    except InvalidInput as exc:
        context["error"], status, up, down = exc.message, 400, 2, 2
    graph = with_urls(lineage.model_graph(user, name, up=up, down=down))
    api = reverse("api:catalog-lineage", args=[name])
    context.update(up=up, down=down, graph=graph, layers=graph_layers(graph),
                   data_url=f"{api}?{urlencode({'up': up, 'down': down})}")
    if column and not context["error"]:
        try:
            traced = lineage.column_lineage(user, name, column)
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        else:
            for item in traced["nodes"]:
                if item["known"]:
                    item["url"] = reverse("catalog-node", args=[item["model"]])
                    item["lineage_url"] = (reverse("catalog-lineage", args=[item["model"]]) + "?"
                                           + urlencode({"up": up, "down": down, "column": item["column"]}))
            context.update(traced=traced, column_layers=graph_layers({"nodes": traced["nodes"]}),
                           column_data_url=f"{api}?{urlencode({'column': traced['column']})}")
            if traced["column"] not in context["column_names"]:
                context["column_names"].append(traced["column"])
    return render(request, "catalog/lineage.html", context, status=status)
