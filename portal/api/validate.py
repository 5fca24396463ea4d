"""`POST /api/v1/validate`: the editor's checks as the analyst types (runner.validation).

Thin: parse the body, check the role, fetch the change (someone else's draft is a 404), call
`runner.validation.validate_model`, answer. Problems in the SQL are not errors of the request: they
come back with 200 as diagnostics, at lines and columns of the analyst's own text.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import changes
from portal.api.frame import allowed
from runner.validation import MAX_SQL_BYTES, validate_model


class _Text(serializers.CharField):
    """Text only: DRF's CharField would also take a number or a boolean."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise ValidationError("Must be text.", code="invalid")
        return super().to_internal_value(data)


class ValidateRequestSerializer(serializers.Serializer):
    sql = _Text(trim_whitespace=False, allow_blank=True, help_text="the model's SQL as typed (Jinja and all), "
                f"at most {MAX_SQL_BYTES // 1024} KB")
    name = _Text(max_length=200, help_text="the model's name (a new model is fine)")
    change = serializers.IntegerField(required=False, allow_null=True, default=None,
                                      help_text="the change request whose branch the project is read from; null: main")


class SpanSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based, in the analyst's text")
    column = serializers.IntegerField(help_text="1-based")
    end_line = serializers.IntegerField()
    end_column = serializers.IntegerField(help_text="exclusive: the column just after the last character")


class FixSerializer(serializers.Serializer):
    label = serializers.CharField()
    replace = SpanSerializer()
    text = serializers.CharField(help_text="what replaces the span")


class DiagnosticSerializer(SpanSerializer):
    severity = serializers.ChoiceField(choices=["error", "warning", "info"])
    code = serializers.CharField(help_text="jinja, syntax, not_a_query, multiple_statements, unknown_ref, "
                                 "unknown_source, unknown_column, columns_unknown, cycle, breaking_change, "
                                 "plain_table, unknown_table")
    message = serializers.CharField()
    fixes = FixSerializer(many=True)


class OutputColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(allow_null=True)


class ValidationSerializer(serializers.Serializer):
    diagnostics = DiagnosticSerializer(many=True)
    refs = serializers.ListField(child=serializers.CharField(), help_text="models the SQL refs")
    sources = serializers.ListField(child=serializers.CharField(), help_text="sources as source.table")
    columns = OutputColumnSerializer(many=True, help_text="the model's output columns, when they can be derived")
    elapsed_ms = serializers.FloatField()


class ValidateView(APIView):
    """Check a model's SQL as typed: Jinja, syntax, one query, refs and sources, columns, cycles, what
    downstream models use, and plain table names that should be refs."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=ValidateRequestSerializer, responses=ValidationSerializer)
    def post(self, request: Request) -> Response:
        body = ValidateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        change = changes.get_change(request.user, data["change"]) if data["change"] is not None else None
        return Response(validate_model(request.user, sql=data["sql"], name=data["name"], change=change))
