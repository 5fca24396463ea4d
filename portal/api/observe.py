"""API views of the data watch (issue 9): anomalies, schema changes, a model's measurements and its
anomaly sensitivity.

Thin, as the pages: parse, call runner.observe.watch (which checks who may: incident.view to read
anomalies and settings, catalog.view for measurements, anomaly.manage to tune), answer. A filter or
setting the service refuses is a 400 that names the field; an unknown model a 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import observe_serializers as os_
from portal.api.frame import allowed
from runner.observe import watch

SOURCE = "api"
NO_MODEL = OpenApiResponse(description="no such model")


def _query(serializer: type, request: Request) -> dict[str, Any]:
    query = serializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


class AnomalyListView(generics.ListAPIView):
    """Anomalies, newest first (`?model=`, `?column=`, `?metric=`, `?severity=warning|incident`, `?run=`)."""

    permission_classes = [IsAuthenticated, allowed("incident.view")]
    serializer_class = os_.AnomalySerializer

    def get_queryset(self):
        return watch.list_anomalies(self.request.user, **_query(os_.AnomalyQuerySerializer, self.request))

    @extend_schema(parameters=[os_.AnomalyQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SchemaChangeListView(generics.ListAPIView):
    """Columns of production models added, removed or retyped between two builds, newest first (`?model=`)."""

    permission_classes = [IsAuthenticated, allowed("incident.view")]
    serializer_class = os_.SchemaChangeSerializer

    def get_queryset(self):
        return watch.list_schema_changes(self.request.user, model=self.request.query_params.get("model", ""))


class ModelMeasurementsView(APIView):
    """The model's newest measurements, newest first (`?kind=production|deploy|ci|dev`, `?limit=1..500`)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[os_.MeasurementQuerySerializer],
                   responses={200: os_.MeasurementSerializer(many=True), 404: NO_MODEL})
    def get(self, request: Request, name: str) -> Response:
        wanted = _query(os_.MeasurementQuerySerializer, request)
        rows = watch.measurements(request.user, name, kind=wanted["kind"], limit=wanted["limit"])
        return Response(os_.MeasurementSerializer(rows, many=True).data)


class ModelAnomalySettingsView(APIView):
    """The sensitivity of the model's anomaly detection. PUT sets the model's own (platform admins);
    the model `-` stands for the defaults of every model."""

    permission_classes = [IsAuthenticated, allowed("incident.view")]

    def get_permissions(self) -> list[Any]:
        if self.request.method == "PUT":
            return [IsAuthenticated(), allowed("anomaly.manage")()]
        return super().get_permissions()

    @extend_schema(responses={200: os_.AnomalySettingsSerializer, 404: NO_MODEL})
    def get(self, request: Request, name: str) -> Response:
        return Response(os_.AnomalySettingsSerializer(watch.settings_of(request.user, _model(name))).data)

    @extend_schema(request=os_.AnomalySettingsWriteSerializer,
                   responses={200: os_.AnomalySettingsSerializer, 404: NO_MODEL})
    def put(self, request: Request, name: str) -> Response:
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            from models_service.errors import InvalidInput

            raise InvalidInput("Send the settings as a JSON object, e.g. {\"warn_score\": 5}.")
        saved = watch.save_settings(request.user, _model(name), dict(body), source=SOURCE)
        return Response(os_.AnomalySettingsSerializer(saved).data)


def _model(name: str) -> str:
    return "" if name == "-" else name
