"""API of personal data in columns (issue 9): the PII tags, legal's decisions on them, and scans.

Thin, as the pages (portal/views/pii.py): parse, call runner.observe.pii, answer. Reading tags and
asking for a scan need `pii.view` (legal, platform admins); confirming or rejecting needs
`pii.classify` (legal). A tag's evidence is counts and pattern names, never a sampled value.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.frame import allowed
from runner.models import PiiStatus, PiiTag
from runner.observe import pii

SOURCE = "api"
NO_TAG = OpenApiResponse(description="no such PII tag")

# --------------------------------------------------------------------------- serializers


class PiiTagSerializer(serializers.ModelSerializer):
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = PiiTag
        fields = ["id", "model", "column", "category", "confidence", "status", "evidence", "detected_at",
                  "decided_by", "decided_at", "note"]

    def get_decided_by(self, tag: PiiTag) -> str | None:
        return tag.decided_by.get_username() if tag.decided_by_id else None


class PiiTagQuerySerializer(serializers.Serializer):
    model = serializers.RegexField(r"^[A-Za-z_][A-Za-z0-9_]*$", required=False, max_length=200,
                                   error_messages={"invalid": "A model name is letters, digits and _."})
    status = serializers.ChoiceField(choices=PiiStatus.choices, required=False)
    category = serializers.ChoiceField(choices=sorted(pii.NAME_RULES), required=False)


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                 help_text="why; required to reject")


class ScanQueuedSerializer(serializers.Serializer):
    model = serializers.CharField()
    queued = serializers.BooleanField()


# --------------------------------------------------------------------------- views


class PiiTagListView(generics.ListAPIView):
    """PII tags by model and column (`?model=`, `?status=suggested|confirmed|rejected`, `?category=`)."""

    permission_classes = [IsAuthenticated, allowed("pii.view")]
    serializer_class = PiiTagSerializer

    def get_queryset(self):
        query = PiiTagQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return pii.list_tags(self.request.user, **query.validated_data)

    @extend_schema(parameters=[PiiTagQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def _decision(verb: str, decided: str, doc: str) -> type[APIView]:
    class DecisionView(APIView):
        permission_classes = [IsAuthenticated, allowed("pii.classify")]

        @extend_schema(request=DecisionSerializer, responses={
            200: PiiTagSerializer, 400: OpenApiResponse(description="no note to a rejection"), 404: NO_TAG,
            409: OpenApiResponse(description="decided so already, or meanwhile")})
        def post(self, request: Request, pk: int) -> Response:
            body = DecisionSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            tag = pii.decide_tag(request.user, pk, decided, body.validated_data["note"], source=SOURCE)
            return Response(PiiTagSerializer(tag).data)

    DecisionView.__doc__ = doc
    DecisionView.__name__ = DecisionView.__qualname__ = f"PiiTag{verb.title()}View"
    return DecisionView


PiiTagConfirmView = _decision("confirm", PiiStatus.CONFIRMED,
                              "Confirm the column holds personal data (legal): it is masked from then on for "
                              "people without the PII permission.")
PiiTagRejectView = _decision("reject", PiiStatus.REJECTED,
                             "Reject the tag (legal), saying why: the column is not masked, and rescans "
                             "leave it rejected unless its values start to look like another kind of PII.")


class ModelPiiScanView(APIView):
    """Scan the model's production relation for PII again (legal, platform admins): queued, 202."""

    permission_classes = [IsAuthenticated, allowed("pii.view")]

    @extend_schema(request=None, responses={202: ScanQueuedSerializer, 404: OpenApiResponse(
        description="no such model on main")})
    def post(self, request: Request, name: str) -> Response:
        pii.request_scan(request.user, name, source=SOURCE)
        return Response({"model": name, "queued": True}, status=status.HTTP_202_ACCEPTED)
