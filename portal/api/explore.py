"""API views of exploring a model (issue 9): its rows, a column's profile, chart data, build history, and
saved charts.

Thin: parse, check the role, call runner.explore, answer. Everything reads the model's production
relation on main; bad input (an unknown column or operator, a value of the wrong kind) is a 400 with
the field at fault, a model never built a 409 (`not_built`), a confirmed-PII column filtered, sorted
or charted by someone without `pii.view` a 403. Anyone with a role reads (catalog.view) and saves
charts; a saved chart is changed or deleted by its owner or a platform admin.

Filters are `[{"column", "op", "value"}]`: in a GET as the JSON text of the `filters` parameter, in a
POST as the body's `filters` list.

A chart over a date or timestamp x axis may be bucketed per day, week (from Monday), month or year
(`bucket`; empty for one point per value): its labels are then the first day of each bucket, as ISO dates.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.frame import allowed
from runner import explore
from runner.models import Chart, ChartBucket, ChartKind

SOURCE = "api"
FILTERS = OpenApiParameter("filters", str, description='JSON list of {"column", "op", "value"}; op one of '
                           + ", ".join(explore.OPS))
KIND_HELP = "the kind of chart: " + ", ".join(ChartKind.values)
BUCKET_HELP = ("a date or timestamp x axis per " + ", ".join(b for b in ChartBucket.values if b)
               + " (labels: each bucket's first day); empty for one point per value")
NOT_BUILT = OpenApiResponse(description="the model has not been built in production yet (not_built)")


def _filters(request: Request) -> Any:
    text = request.query_params.get("filters")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise explore.ExploreError('filters must be JSON: [{"column": "status", "op": "=", "value": "paid"}].',
                                   field="filters") from None


class FilterSerializer(serializers.Serializer):
    column = serializers.CharField()
    op = serializers.ChoiceField(choices=explore.OPS)
    value = serializers.JSONField(required=False, allow_null=True)


class RowsRequestSerializer(serializers.Serializer):
    filters = serializers.ListField(child=serializers.DictField(), required=False)
    sort = serializers.CharField(required=False, allow_blank=True)
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=explore.MAX_PAGE)
    offset = serializers.IntegerField(required=False, min_value=0)


class ExploreColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    kind = serializers.CharField(help_text="number, date, timestamp, boolean, text or other")
    masked = serializers.BooleanField(required=False, help_text="personal data, masked for you")


class RowsSerializer(serializers.Serializer):
    model = serializers.CharField()
    relation = serializers.CharField(help_text="schema.table in the warehouse")
    columns = ExploreColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))
    row_count = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="more rows follow this page")
    total = serializers.IntegerField(help_text="rows that match the filters")
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    sort = serializers.CharField(allow_null=True)
    order = serializers.CharField(allow_null=True)
    filters = FilterSerializer(many=True)
    elapsed_ms = serializers.FloatField()


class ProfileSerializer(serializers.Serializer):
    model = serializers.CharField()
    column = serializers.CharField()
    type = serializers.CharField()
    kind = serializers.CharField()
    rows = serializers.IntegerField()
    nulls = serializers.IntegerField()
    min = serializers.JSONField(allow_null=True)
    max = serializers.JSONField(allow_null=True)
    distinct = serializers.IntegerField(allow_null=True)
    unit = serializers.CharField(allow_null=True, help_text="dates: the bucket (day, month, year)")
    histogram = serializers.ListField(child=serializers.DictField(), allow_null=True,
                                      help_text="numbers and dates: [{from, to, count}]")
    top = serializers.ListField(child=serializers.DictField(), allow_null=True,
                                help_text="other columns: the 20 most frequent [{value, count}]")
    masked = serializers.BooleanField()


class ChartDefinitionSerializer(serializers.Serializer):
    # Text, not an enum in the schema (its name would collide with other "kind" enums); checked by the service.
    kind = serializers.CharField(required=False, help_text=KIND_HELP)
    x = serializers.CharField(max_length=200)
    # Text, like kind; checked by the service (a bucket needs a date x axis, which only it knows).
    bucket = serializers.CharField(max_length=10, required=False, allow_blank=True, help_text=BUCKET_HELP)
    y = serializers.CharField(max_length=200, required=False, allow_blank=True)
    group_by = serializers.CharField(max_length=200, required=False, allow_blank=True)
    aggregate = serializers.ChoiceField(choices=explore.AGGREGATES, required=False)
    filters = serializers.ListField(child=serializers.DictField(), required=False)


class SeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    other = serializers.BooleanField(help_text="the groups beyond the first 12, together")
    values = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="aligned to labels")
    points = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()), help_text="[x, y]")


class ChartDataSerializer(serializers.Serializer):
    model = serializers.CharField()
    kind = serializers.CharField()
    x = serializers.CharField()
    bucket = serializers.CharField(allow_null=True, help_text="x per day, week, month or year; null: one point per "
                                   "value")
    y = serializers.CharField(allow_null=True)
    group_by = serializers.CharField(allow_null=True)
    aggregate = serializers.CharField()
    filters = FilterSerializer(many=True)
    labels = serializers.ListField(child=serializers.JSONField())
    series = SeriesSerializer(many=True)
    truncated = serializers.BooleanField(help_text=f"more than {explore.MAX_POINTS} x values (or 5,000 points)")
    groups_truncated = serializers.BooleanField(help_text=f"more than {explore.MAX_GROUPS} groups: see Other")
    masked = serializers.BooleanField()
    elapsed_ms = serializers.FloatField()


class BuildPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    rows = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    kind = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)


class BuildHistorySerializer(serializers.Serializer):
    model = serializers.CharField()
    source = serializers.ChoiceField(choices=["measurements", "runs"])
    points = BuildPointSerializer(many=True)


class ChartSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text=KIND_HELP)
    bucket = serializers.CharField(allow_blank=True, help_text=BUCKET_HELP)
    owner = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="the chart's page: share this link")
    may_change = serializers.SerializerMethodField()

    class Meta:
        model = Chart
        fields = ["id", "model", "title", "kind", "x", "bucket", "y", "group_by", "aggregate", "filters", "owner", "url",
                  "may_change", "created_at", "updated_at"]

    def get_owner(self, chart: Chart) -> str | None:
        return chart.owner.get_username() if chart.owner else None

    def get_url(self, chart: Chart) -> str:
        return reverse("chart", args=[chart.pk])

    def get_may_change(self, chart: Chart) -> bool:
        request = self.context.get("request")
        return bool(request) and explore.may_change(request.user, chart)


class ChartWriteSerializer(ChartDefinitionSerializer):
    model = serializers.CharField(max_length=200, help_text="only when making a chart")
    title = serializers.CharField(max_length=200)


# --------------------------------------------------------------------------- a model's data


class ModelRowsView(APIView):
    """A page of the model's production rows: `sort` by a column, `order` asc or desc, `filters`,
    `limit` (at most 500) and `offset`. POST takes the same as a JSON body."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[FILTERS, OpenApiParameter("sort", str), OpenApiParameter("order", str),
                               OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
                   responses={200: RowsSerializer, 409: NOT_BUILT}, operation_id="models_rows")
    def get(self, request: Request, name: str) -> Response:
        q = request.query_params
        return Response(explore.rows(request.user, name, filters=_filters(request), sort=q.get("sort") or None,
                                     order=q.get("order") or None, limit=q.get("limit"), offset=q.get("offset"),
                                     source=SOURCE))

    @extend_schema(request=RowsRequestSerializer, responses={200: RowsSerializer, 409: NOT_BUILT},
                   operation_id="models_rows_query")
    def post(self, request: Request, name: str) -> Response:
        body = RowsRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        return Response(explore.rows(request.user, name, filters=d.get("filters"), sort=d.get("sort") or None,
                                     order=d.get("order"), limit=d.get("limit"), offset=d.get("offset"),
                                     source=SOURCE))


class ModelProfileView(APIView):
    """What one column holds (`column`, with optional `filters`): numbers as a histogram of about 20
    equal bins, dates per day, month or year, other columns as their 20 most frequent values."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[OpenApiParameter("column", str, required=True), FILTERS],
                   responses={200: ProfileSerializer, 409: NOT_BUILT}, operation_id="models_profile")
    def get(self, request: Request, name: str) -> Response:
        column = request.query_params.get("column")
        if not column:
            raise explore.ExploreError("Name the column to profile: ?column=...", field="column")
        return Response(explore.profile(request.user, name, column, filters=_filters(request), source=SOURCE))


class ChartDataView(APIView):
    """The data of a chart of the model: x (a date one optionally bucketed: bucket day, week, month or
    year), y, group_by, aggregate (none, count, sum, avg, min, max) and filters; at most 1,000 x values and 12 groups (the rest as Other), flagged when cut."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(request=ChartDefinitionSerializer, responses={200: ChartDataSerializer, 409: NOT_BUILT},
                   operation_id="models_chart_data")
    def post(self, request: Request, name: str) -> Response:
        if not isinstance(request.data, dict):
            raise explore.ExploreError("Send the chart as a JSON object.", field=None)
        return Response(explore.chart_data(request.user, name, dict(request.data), source=SOURCE))


class BuildHistoryView(APIView):
    """Row count and build seconds of the model's production builds, oldest first (`limit`, at most 500)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[OpenApiParameter("limit", int)], responses={200: BuildHistorySerializer},
                   operation_id="models_build_history")
    def get(self, request: Request, name: str) -> Response:
        data = explore.build_history(request.user, name, request.query_params.get("limit"))
        return Response(BuildHistorySerializer(data).data)


# --------------------------------------------------------------------------- saved charts


class ChartListView(generics.ListAPIView):
    """Saved charts, newest first; `?model=` for one model's. POST saves one (its definition is checked
    against the model's relation)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]
    serializer_class = ChartSerializer

    def get_queryset(self):
        return explore.charts_of(self.request.user, self.request.query_params.get("model") or None)

    @extend_schema(request=ChartWriteSerializer, responses={201: ChartSerializer, 409: NOT_BUILT})
    def post(self, request: Request) -> Response:
        body = ChartWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        chart = explore.save_chart(request.user, None, dict(body.validated_data), source=SOURCE)
        return Response(ChartSerializer(chart, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ChartDetailView(APIView):
    """One saved chart. PATCH changes the fields sent; PATCH and DELETE are its owner's or a platform admin's."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    def _body(self, request: Request, chart: Chart) -> Response:
        return Response(ChartSerializer(chart, context={"request": request}).data)

    @extend_schema(responses={200: ChartSerializer, 404: OpenApiResponse(description="no such chart")})
    def get(self, request: Request, pk: int) -> Response:
        return self._body(request, explore.get_chart(request.user, pk))

    @extend_schema(request=ChartWriteSerializer, responses={200: ChartSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        chart = explore.get_chart(request.user, pk)
        if not explore.may_change(request.user, chart):
            raise PermissionDenied("Only the chart's owner or a platform admin may change it.")
        body = ChartWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data.pop("model", None)  # a chart stays with its model
        return self._body(request, explore.save_chart(request.user, chart, data, source=SOURCE))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        explore.delete_chart(request.user, explore.get_chart(request.user, pk), source=SOURCE)
        return Response(status=status.HTTP_204_NO_CONTENT)
