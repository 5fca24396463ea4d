"""The catalog's API (issue 9): search with the reason of each match, one node's detail (columns with
their latest statistics and PII tags, tests with their latest outcome, freshness, neighbours), and
lineage: the model graph N levels up and down, or with `?column=` where that column comes from and
which columns below read it. The pages call the same services (models_service.index.search,
runner.catalog.model_detail, runner.lineage); statistics of confirmed PII columns come back masked
for callers without `pii.view`, as on the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import index
from models_service.errors import InvalidInput
from portal.api.frame import allowed
from portal.views.catalog import node_urls, with_urls
from runner import catalog, lineage

MAX_LIMIT = 200
NOT_FOUND = OpenApiResponse(description="nothing of that name on main")
BAD = OpenApiResponse(description="a parameter is not valid (the message says which and why)")


# --------------------------------------------------------------------------- shapes


class SearchResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    materialized = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    score = serializers.IntegerField(help_text="higher is better: 100 exact name ... 15 a column's description")
    reason = serializers.CharField(help_text="what matched: name, name starts with, name contains, tag, owner, "
                                             "column, description, column description")
    column = serializers.CharField(help_text="the column that matched, if any")
    matched = serializers.CharField(help_text="the tag or owner that matched, if any")
    url = serializers.CharField()


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField()
    count = serializers.IntegerField()
    results = SearchResultSerializer(many=True)


class StatsSerializer(serializers.Serializer):
    nulls = serializers.IntegerField(required=False)
    null_fraction = serializers.FloatField(required=False)
    distinct = serializers.IntegerField(required=False)
    sample = serializers.IntegerField(required=False, help_text="rows measured, when the relation was measured on "
                                      "a sample (null and top counts scaled up; distinct and mean are the sample's)")
    min = serializers.JSONField(required=False, help_text="••• for a confirmed PII column you may not see")
    max = serializers.JSONField(required=False)
    mean = serializers.JSONField(required=False)
    stddev = serializers.JSONField(required=False)
    top = serializers.JSONField(required=False, help_text="[[value, count], ...], or ••• when masked")


class TestResultSerializer(serializers.Serializer):
    unique_id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    column = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField(allow_null=True, help_text="pass, warn, fail, error, skipped; null: never run")
    failures = serializers.IntegerField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    run = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class PiiSerializer(serializers.Serializer):
    category = serializers.CharField()
    status = serializers.CharField()
    confidence = serializers.FloatField()


class CatalogColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    declared_type = serializers.CharField()
    measured_type = serializers.CharField()
    description = serializers.CharField()
    tests = serializers.ListField(child=serializers.CharField())
    pii = PiiSerializer(allow_null=True)
    stats = StatsSerializer(allow_null=True)
    masked = serializers.BooleanField()
    documented = serializers.BooleanField(help_text="described in the yml")
    in_warehouse = serializers.BooleanField(help_text="measured in the last production build")


class FreshnessSerializer(serializers.Serializer):
    built_at = serializers.DateTimeField(allow_null=True, help_text="the last successful production build")
    run = serializers.IntegerField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    last_status = serializers.CharField(allow_null=True)
    last_at = serializers.DateTimeField(allow_null=True)
    last_run = serializers.IntegerField(allow_null=True)
    failing = serializers.BooleanField()


class NeighbourSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    materialized = serializers.CharField()
    url = serializers.CharField(required=False)


class CatalogDetailSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    materialized = serializers.CharField()
    path = serializers.CharField()
    commit = serializers.CharField()
    freshness = FreshnessSerializer(allow_null=True)
    measurement = serializers.DictField(allow_null=True, help_text="{at, rows, seconds, bytes, run}")
    columns = CatalogColumnSerializer(many=True)
    tests = TestResultSerializer(many=True)
    parents = NeighbourSerializer(many=True)
    children = NeighbourSerializer(many=True)
    url = serializers.CharField()
    lineage_url = serializers.CharField()


class GraphNodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    materialized = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    layer = serializers.IntegerField(help_text="negative above the focus, positive below")
    focus = serializers.BooleanField()
    known = serializers.BooleanField(help_text="false for a parent the index does not hold")
    url = serializers.CharField(required=False)
    lineage_url = serializers.CharField(required=False)


class EdgeSerializer(serializers.Serializer):
    """{"from": parent, "to": child} (`from` is a Python keyword, hence get_fields)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {"from": serializers.CharField(), "to": serializers.CharField()}


class LineageSerializer(serializers.Serializer):
    focus = serializers.CharField()
    kind = serializers.CharField()
    up = serializers.IntegerField()
    down = serializers.IntegerField()
    nodes = GraphNodeSerializer(many=True)
    edges = EdgeSerializer(many=True)
    truncated = serializers.BooleanField()
    more_above = serializers.BooleanField()
    more_below = serializers.BooleanField()


# --------------------------------------------------------------------------- views


def _limit(value: Any) -> int:
    if value in (None, ""):
        return 50
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"limit is a number, 1 to {MAX_LIMIT}.", field="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit is a number, 1 to {MAX_LIMIT}.", field="limit")
    return limit


class SearchView(APIView):
    """Models, seeds and sources on main matching `q`, best first, each with why it matched."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[
        OpenApiParameter("q", str, description="words; tag:, owner:, column: and kind: narrow"),
        OpenApiParameter("kind", str, enum=["model", "seed", "source"]),
        OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}, default 50"),
    ], responses={200: SearchSerializer, 400: BAD})
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        hits = index.search(request.user, query, kind=request.query_params.get("kind") or None,
                            limit=_limit(request.query_params.get("limit")))
        results = [{
            "kind": h.node.kind, "name": h.node.name, "description": h.node.description, "owner": h.node.owner,
            "materialized": h.node.materialized, "tags": sorted(t.tag for t in h.node.tags.all()),
            "score": h.score, "reason": h.reason, "column": h.column, "matched": h.matched,
            "url": node_urls(h.node.name)["url"],
        } for h in hits]
        return Response(SearchSerializer({"query": query, "count": len(results), "results": results}).data)


class CatalogDetailView(APIView):
    """One node on main: description, owner, tags, columns with statistics and PII tags, tests with
    their latest outcome, freshness, and the nodes it reads and that read it."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: CatalogDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        detail = catalog.model_detail(request.user, name)
        body = {k: v for k, v in detail.items() if k != "node"}
        for n in body["parents"] + body["children"]:
            if n.get("known"):
                n["url"] = node_urls(n["name"])["url"]
        body.update(node_urls(name))
        return Response(CatalogDetailSerializer(body).data)


class CatalogLineageView(APIView):
    """The model graph around a node (`up`, `down`: levels, 0 to 10, default 2); with `column=`, the
    lineage of that column instead: the columns it is made of, down to seeds and sources, and the
    columns below that read it (nodes with `id` model.column, `expression`, `transform`)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[
        OpenApiParameter("up", int), OpenApiParameter("down", int),
        OpenApiParameter("column", str, description="trace this column instead"),
    ], responses={200: LineageSerializer, 400: BAD, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        params = request.query_params
        up = lineage.depth_param(params.get("up"), "up", 2)
        down = lineage.depth_param(params.get("down"), "down", 2)
        catalog.get_node(request.user, name)  # 404 before any work
        if params.get("column") is not None:
            traced = lineage.column_lineage(request.user, name, params["column"])
            for node in traced["nodes"]:
                if node["known"]:
                    urls = node_urls(node["model"])
                    node["url"] = urls["url"]
                    node["lineage_url"] = f"{urls['lineage_url']}?{urlencode({'column': node['column']})}"
            return Response(traced)
        graph = with_urls(lineage.model_graph(request.user, name, up=up, down=down))
        return Response(LineageSerializer(graph).data)
