"""API views of the editor's preview and "Test my model" (runner.preview, runner.testrun).

Thin: parse, check the role, call one service function, answer. A preview that cannot run answers
400 with `{"error": {"code": compile_error | preview_failed | timeout, "message", "field": "sql",
"line", "column"}}`, the line and column in the analyst's own text (null when unknown); 503 with code
`busy` (and Retry-After) in the rare case the embedded warehouse stays in hand-over too long.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service.changes import MAX_SQL_BYTES
from portal.api.frame import allowed
from runner import preview, testrun
from runner.models import TestRunStatus


class PreviewRequestSerializer(serializers.Serializer):
    sql = serializers.CharField(trim_whitespace=False, max_length=MAX_SQL_BYTES,
                                help_text="the model's SQL as written (Jinja and all)")
    name = serializers.CharField(max_length=200, help_text="the model's name (a new one is fine)")
    change = serializers.IntegerField(required=False, allow_null=True, default=None,
                                      help_text="the change request whose branch to compile with; null: main")
    limit = serializers.IntegerField(required=False, default=100, min_value=1,
                                     help_text="rows wanted; capped at the server's maximum (DMAAS_PREVIEW_MAX_ROWS)")


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class PreviewSerializer(serializers.Serializer):
    columns = ColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()),
                                 help_text="JSON-safe cells: dates as ISO text, decimals as text")
    row_count = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="the query has more rows than were returned")
    elapsed_ms = serializers.FloatField()
    compiled_sql = serializers.CharField()


class SqlErrorDetailSerializer(serializers.Serializer):
    # Not an enum: a request the serializer or the name check refuses answers with their codes too.
    code = serializers.CharField(help_text="compile_error, preview_failed, timeout or busy; for a refused "
                                           "request: invalid_name, required, invalid, max_length, ...")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)
    line = serializers.IntegerField(allow_null=True, required=False)
    column = serializers.IntegerField(allow_null=True, required=False)


class SqlErrorSerializer(serializers.Serializer):
    error = SqlErrorDetailSerializer()


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["model", "test"])
    status = serializers.CharField(help_text="pending; models: success, error, skipped; tests: pass, warn, fail, "
                                             "error, skipped")
    message = serializers.CharField(allow_blank=True)
    seconds = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True, help_text="rows built; for a test, its failing rows")
    failing_rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()),
                                         help_text="a sample of the failing rows (at most 10)")
    failing_columns = serializers.ListField(child=serializers.CharField())


class TestRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TestRunStatus.values)
    model = serializers.CharField()
    change = serializers.IntegerField()
    commit = serializers.CharField(help_text="the commit of the change that was tested")
    schema = serializers.CharField(help_text="the dev schema the model is built into")
    message = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = StepSerializer(many=True)


TestRunSerializer.__test__ = False  # type: ignore[attr-defined]


def _failed(err: preview.PreviewFailed) -> Response:
    headers = {"Retry-After": "5"} if err.status == 503 else None
    return Response({"error": err.body()}, status=err.status, headers=headers)


class PreviewView(APIView):
    """The first rows of a model as written: compiled with the change's branch (unmodified parents from
    production, modified ones from your dev schema), run read-only with a time limit."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=PreviewRequestSerializer,
                   responses={200: PreviewSerializer,
                              400: OpenApiResponse(SqlErrorSerializer, description="the SQL cannot be compiled or run"),
                              503: OpenApiResponse(SqlErrorSerializer, description="the warehouse is busy")})
    def post(self, request: Request) -> Response:
        body = PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            result = preview.preview_model(request.user, sql=data["sql"], name=data["name"],
                                           change=data["change"], limit=data["limit"])
        except preview.PreviewFailed as err:
            return _failed(err)
        return Response(result)


def _run_body(run: Any, code: int = status.HTTP_200_OK) -> Response:
    return Response(TestRunSerializer(testrun.as_dict(run)).data, status=code)


class ModelTestView(APIView):
    """Test my model: queue a build of the model as saved on the change into your dev schema, with its
    data tests. Poll the answer's `id` at /api/v1/test-runs/{id}."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=None, operation_id="changes_models_test",
                   responses={202: TestRunSerializer,
                              404: OpenApiResponse(description="no such change or model"),
                              409: OpenApiResponse(description="the change is closed")})
    def post(self, request: Request, pk: int, name: str) -> Response:
        run = testrun.request_test(request.user, pk, name)
        return _run_body(run, status.HTTP_202_ACCEPTED)


class TestRunView(APIView):
    """One test run, as its page polls it: status and steps (a failing test with sample rows)."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(responses={200: TestRunSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return _run_body(testrun.get_test_run(request.user, pk))

