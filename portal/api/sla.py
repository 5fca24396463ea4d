"""API views of the service agreement (issue 8): its settings, the closing days, every item's clock and
the report, for platform admins (the `sla.view` action; the SLA dashboard is theirs).

Thin, as the other views: parse with a serializer, call runner.sla (settings_service changes the
settings and closing days, with an audit entry; agreement computes the items and the report), answer.
Dates in queries are local days of the portal's time zone (TIME_ZONE), `end` exclusive. The report is
JSON, or CSV with `?as=csv` (not `?format=`, which DRF keeps for picking a renderer).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import sla_serializers as ss
from portal.api.frame import allowed
from runner.models import ClosingDay, SlaSettings
from runner.sla import agreement, clock, settings_service
from runner.sla.agreement import CLOSED_STATES, Item

SOURCE = "api"
SLAS = ("review", "incident", "run")
STATE_ORDER = {"breached": 0, "at_risk": 1, "on_track": 2, "met_late": 3, "met": 4}


def _permissions() -> list[Any]:
    return [IsAuthenticated, allowed("sla.view")]


def local_midnight(day: dt.date) -> dt.datetime:
    """The instant a local day of TIME_ZONE begins, in UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(settings.TIME_ZONE)).astimezone(dt.UTC)


# --------------------------------------------------------------------------- settings and closing days


class SlaSettingsView(APIView):
    """The service agreement's allowances and targets. PATCH changes the settings sent, and only
    those; a value out of range is a 400 naming it. Each change is in the audit log."""

    permission_classes = _permissions()

    @extend_schema(responses=ss.SlaSettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response(ss.SlaSettingsSerializer(SlaSettings.current()).data)

    @extend_schema(request=ss.SlaSettingsUpdateSerializer, responses=ss.SlaSettingsSerializer)
    def patch(self, request: Request) -> Response:
        body = ss.SlaSettingsUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rules = settings_service.update_settings(request.user, source=SOURCE, **body.validated_data)
        return Response(ss.SlaSettingsSerializer(rules).data)


class ClosingDayListView(generics.ListAPIView):
    """The company's own closing days, by date (public holidays come from DMAAS_HOLIDAYS). POST adds
    one (`{"date": "2026-12-24", "name": "Christmas Eve"}`): no working time counts on it."""

    permission_classes = _permissions()
    serializer_class = ss.ClosingDaySerializer

    def get_queryset(self):
        return ClosingDay.objects.order_by("date")

    @extend_schema(request=ss.ClosingDayWriteSerializer, responses={201: ss.ClosingDaySerializer})
    def post(self, request: Request) -> Response:
        body = ss.ClosingDayWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        day = settings_service.add_closing_day(request.user, body.validated_data["date"],
                                               body.validated_data["name"], source=SOURCE)
        return Response(ss.ClosingDaySerializer(day).data, status=status.HTTP_201_CREATED)


class ClosingDayDetailView(APIView):
    """Remove a closing day: working time counts on it again."""

    permission_classes = _permissions()

    @extend_schema(request=None, responses={204: None, 404: OpenApiResponse(description="no such closing day")})
    def delete(self, request: Request, pk: int) -> Response:
        settings_service.remove_closing_day(request.user, pk, source=SOURCE)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- items


def items_of(kind: str | None, now: dt.datetime, since: dt.datetime) -> list[Item]:
    """The items of `kind` (reviews, incidents and run slots when None): every open one, and those
    closed since `since`."""
    c = clock()
    rules = SlaSettings.current()
    kinds = (kind,) if kind else SLAS
    items: list[Item] = []
    if "review" in kinds:
        items += agreement.review_items(c, rules, now, since=since)
    if "incident" in kinds:
        items += agreement.incident_items(c, rules, now, since=since)
    if "run" in kinds:
        items += agreement.run_items(rules, now, since)
    if "freshness" in kinds:
        items += agreement.freshness_items(rules, now)
    if kind != "freshness":
        items = [i for i in items if i.state not in CLOSED_STATES or i.finished is None or i.finished >= since]
    return sorted(items, key=_order)


def _order(item: Item) -> tuple[Any, ...]:
    """Breached, at risk and on track first (least time left first), then the closed ones, newest first."""
    rank = STATE_ORDER.get(item.state, 9)
    if item.state in CLOSED_STATES:
        return (rank, -(item.finished or item.started).timestamp())
    return (rank, item.left.total_seconds())


class SlaItemListView(APIView):
    """Every promise with its clock (`?kind=review|incident|run|freshness`, `?state=`, `?days=`): the
    open ones, and those closed in the last `days` days. Used and left time are working time for
    reviews and incidents, wall-clock time for runs and freshness."""

    permission_classes = _permissions()

    @extend_schema(parameters=[ss.ItemQuerySerializer], responses=ss.ItemSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = ss.ItemQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        now = timezone.now()
        items = items_of(wanted.get("kind"), now, now - dt.timedelta(days=wanted["days"]))
        if "state" in wanted:
            items = [i for i in items if i.state == wanted["state"]]
        return Response(ss.ItemSerializer([i.as_dict() for i in items], many=True).data)


# --------------------------------------------------------------------------- the report


def report_data(start_day: dt.date, end_day: dt.date, now: dt.datetime | None = None) -> dict[str, Any]:
    """runner.sla.agreement.report for the local days [start_day, end_day), as the API answers it."""
    start, end = local_midnight(start_day), local_midnight(end_day)
    data = agreement.report(clock(), start, end, now=now)
    data.pop("items", None)  # /api/v1/sla/items lists them
    data["period"] = {"start": start, "end": end, "start_date": start_day, "end_date": end_day}
    data["attention"] = [i.as_dict() for i in data["attention"]]
    data["freshness"] = {**data["freshness"], "stale": [i.as_dict() for i in data["freshness"]["stale"]]}
    return data


CSV_COLUMNS = ("sla", "week", "items", "met", "attainment")


def report_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for sla in SLAS:
        for week in data[sla]["weeks"]:
            attainment = "" if week["attainment"] is None else week["attainment"]
            writer.writerow((sla, week["week"], week["items"], week["met"], attainment))
    return out.getvalue()


class SlaReportView(APIView):
    """The SLA dashboard for a period of local days (`?start=YYYY-MM-DD&end=YYYY-MM-DD`, `end`
    exclusive; the last 28 days by default): attainment against each target, counts, time to first
    review and to acknowledge (median, p90), punctuality, weeks, owners, freshness, and what needs
    attention now. `?as=csv`: one row per SLA and ISO week (sla, week, items, met, attainment) as a
    download."""

    permission_classes = _permissions()

    @extend_schema(parameters=[ss.ReportQuerySerializer], responses={
        (200, "application/json"): ss.ReportSerializer,
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="with `?as=csv`")})
    def get(self, request: Request) -> Response | HttpResponse:
        query = ss.ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        data = report_data(start, end)
        if query.validated_data["as"] == "csv":
            response = HttpResponse(report_csv(data), content_type="text/csv; charset=utf-8")
            last = end - dt.timedelta(days=1)
            response["Content-Disposition"] = f'attachment; filename="sla-report-{start:%Y-%m-%d}-to-{last:%Y-%m-%d}.csv"'
            return response
        return Response(ss.ReportSerializer(data).data)
