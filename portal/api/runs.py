"""API views of production runs (issue 7): schedules, runs and their nodes, what runs next, incidents.

Thin, as the pages: parse with a serializer, call the service function the page calls (runner.runs,
runner.incidents), answer. Who may do what is the policy table's (run.view, run.trigger,
schedule.manage, incident.view, incident.manage), checked here and again by the services; a run that
is still going cannot be retried, nor a finished one cancelled, nor an incident acknowledged twice
(409). Lists no service makes (runs, schedules, incidents) are querysets here, filtered and paginated.
Service errors become the API's error shape in portal/api/errors.py.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import access, audit
from models_service.errors import NotFound
from portal.api import run_serializers as rs
from portal.api.frame import allowed
from runner import incidents, runs
from runner.models import Incident, NodeRun, Run, Schedule

SOURCE = "api"
NO_SCHEDULE = OpenApiResponse(description="no such schedule")
NO_RUN = OpenApiResponse(description="no such run")
NO_INCIDENT = OpenApiResponse(description="no such incident")


def _schedule(pk: int) -> Schedule:
    schedule = Schedule.objects.select_related("after").filter(pk=pk).first()
    if schedule is None:
        raise NotFound(f"There is no schedule {pk}.")
    return schedule


def _run_body(run: Run, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(rs.RunSerializer(run).data, status=status_code)


def _incident_body(incident: Incident) -> Response:
    return Response(rs.IncidentSerializer(incident).data)


def _delete_schedule(user: Any, schedule: Schedule, *, source: str) -> None:
    """Delete the schedule and its beat task (runner.runs has no function for it); its runs stay,
    without a schedule, and schedules that ran after it no longer do."""
    from django_celery_beat.models import PeriodicTask

    access.require(user, "schedule.manage")
    with transaction.atomic():
        audit.record(user, "schedule.delete", schedule, source=source, details={"name": schedule.name})
        PeriodicTask.objects.filter(name=f"dmaas-schedule-{schedule.pk}").delete()
        schedule.delete()


# --------------------------------------------------------------------------- schedules


class ScheduleListView(generics.ListAPIView):
    """The schedules, by name, each with its next slots. POST makes one (platform admins): a `cron`,
    or an `after` schedule to follow, or both; its beat task is made with it."""

    permission_classes = [IsAuthenticated, allowed("run.view")]
    serializer_class = rs.ScheduleSerializer

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), allowed("schedule.manage")()]
        return super().get_permissions()

    def get_queryset(self):
        return Schedule.objects.select_related("after").order_by("name", "id")

    @extend_schema(request=rs.ScheduleWriteSerializer, responses={201: rs.ScheduleSerializer})
    def post(self, request: Request) -> Response:
        body = rs.ScheduleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = runs.save_schedule(request.user, None, source=SOURCE, **body.validated_data)
        return Response(rs.ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    """One schedule. PATCH changes the settings sent, and only those; DELETE removes it and its beat
    task (platform admins). Its runs stay."""

    permission_classes = [IsAuthenticated, allowed("run.view")]

    def get_permissions(self) -> list[Any]:
        if self.request.method in ("PATCH", "DELETE"):
            return [IsAuthenticated(), allowed("schedule.manage")()]
        return super().get_permissions()

    @extend_schema(responses={200: rs.ScheduleSerializer, 404: NO_SCHEDULE})
    def get(self, request: Request, pk: int) -> Response:
        return Response(rs.ScheduleSerializer(_schedule(pk)).data)

    @extend_schema(request=rs.ScheduleWriteSerializer, responses={200: rs.ScheduleSerializer, 404: NO_SCHEDULE})
    def patch(self, request: Request, pk: int) -> Response:
        schedule = _schedule(pk)
        body = rs.ScheduleWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        schedule = runs.save_schedule(request.user, schedule, source=SOURCE, **body.validated_data)
        return Response(rs.ScheduleSerializer(schedule).data)

    @extend_schema(request=None, responses={204: None, 404: NO_SCHEDULE})
    def delete(self, request: Request, pk: int) -> Response:
        _delete_schedule(request.user, _schedule(pk), source=SOURCE)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _switch(verb: str, enabled: bool, doc: str) -> type[APIView]:
    """POST /schedules/{id}/<verb>: enable or disable the schedule (and its beat task)."""

    class Switch(APIView):
        permission_classes = [IsAuthenticated, allowed("schedule.manage")]

        @extend_schema(request=None, responses={200: rs.ScheduleSerializer, 404: NO_SCHEDULE},
                       operation_id=f"schedules_{verb}", description=doc)
        def post(self, request: Request, pk: int) -> Response:
            schedule = runs.save_schedule(request.user, _schedule(pk), source=SOURCE, enabled=enabled)
            return Response(rs.ScheduleSerializer(schedule).data)

    Switch.__name__ = Switch.__qualname__ = f"Schedule{verb.title()}View"
    Switch.__doc__ = doc
    return Switch


SchedulePauseView = _switch("pause", False, "Pause the schedule: its beat task stops firing until it is resumed.")
ScheduleResumeView = _switch("resume", True, "Resume a paused schedule: its beat task fires again.")


class ScheduleRunView(APIView):
    """Run the schedule's selection now, by hand (platform admins): 202 with the run to poll at
    /api/v1/runs/{id}. While a run of the target is going, it queues behind it."""

    permission_classes = [IsAuthenticated, allowed("run.trigger")]

    @extend_schema(request=None, responses={202: rs.RunSerializer, 404: NO_SCHEDULE})
    def post(self, request: Request, pk: int) -> Response:
        run = runs.request_run(request.user, schedule=_schedule(pk), source=SOURCE)
        return _run_body(run, status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------------------- runs


class RunListView(generics.ListAPIView):
    """Runs, newest first (`?schedule=`, `?status=`, `?model=`: those with a node of that name).
    POST runs a selection of main now (platform admins): 202 with the run to poll."""

    permission_classes = [IsAuthenticated, allowed("run.view")]
    serializer_class = rs.RunSerializer

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), allowed("run.trigger")()]
        return super().get_permissions()

    def get_queryset(self):
        query = rs.RunQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        qs = Run.objects.select_related("schedule", "requested_by").order_by("-created_at", "-id")
        if "schedule" in wanted:
            qs = qs.filter(schedule_id=wanted["schedule"])
        if "status" in wanted:
            qs = qs.filter(status=wanted["status"])
        if "model" in wanted:
            qs = qs.filter(pk__in=NodeRun.objects.filter(name=wanted["model"]).values("run_id"))
        return qs

    @extend_schema(parameters=[rs.RunQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=rs.RunRequestSerializer, responses={202: rs.RunSerializer})
    def post(self, request: Request) -> Response:
        body = rs.RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = runs.request_run(request.user, select=body.validated_data["select"],
                               exclude=body.validated_data["exclude"], source=SOURCE)
        return _run_body(run, status.HTTP_202_ACCEPTED)


class RunNextView(APIView):
    """What runs next: each enabled schedule's next slots, the models it builds and how long they
    took lately, soonest first."""

    permission_classes = [IsAuthenticated, allowed("run.view")]

    @extend_schema(parameters=[rs.NextQuerySerializer], responses=rs.NextRunSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = rs.NextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        upcoming = runs.next_runs(per_schedule=query.validated_data["count"])
        return Response(rs.NextRunSerializer(upcoming, many=True).data)


class RunDetailView(APIView):
    """One run with each of its nodes (`?sql=1`: and their compiled SQL)."""

    permission_classes = [IsAuthenticated, allowed("run.view")]

    @extend_schema(parameters=[rs.RunDetailQuerySerializer], responses={200: rs.RunDetailSerializer, 404: NO_RUN})
    def get(self, request: Request, pk: int) -> Response:
        query = rs.RunDetailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        sql = query.validated_data["sql"]
        run = runs.get_run(request.user, pk)
        nodes = NodeRun.objects.order_by("id")
        prefetch_related_objects([run], Prefetch("nodes", queryset=nodes if sql else nodes.defer("compiled_sql")))
        return Response(rs.RunDetailSerializer(run, context={"sql": sql}).data)


class RunRetryView(APIView):
    """Run a finished run's failed nodes again, with what they skipped, at main's current commit
    (platform admins): 202 with the new run. 409 while it is going or when nothing failed."""

    permission_classes = [IsAuthenticated, allowed("run.trigger")]

    @extend_schema(request=None, responses={202: rs.RunSerializer, 404: NO_RUN,
                                            409: OpenApiResponse(description="still going, or nothing failed")})
    def post(self, request: Request, pk: int) -> Response:
        return _run_body(runs.retry_run(request.user, pk, source=SOURCE), status.HTTP_202_ACCEPTED)


class RunCancelView(APIView):
    """Cancel a run (platform admins): nodes not started are skipped, running ones finish. 409 for a
    run that has finished."""

    permission_classes = [IsAuthenticated, allowed("run.trigger")]

    @extend_schema(request=None, responses={200: rs.RunSerializer, 404: NO_RUN,
                                            409: OpenApiResponse(description="the run has finished")})
    def post(self, request: Request, pk: int) -> Response:
        return _run_body(runs.cancel_run(request.user, pk, source=SOURCE))


# --------------------------------------------------------------------------- incidents


class IncidentListView(generics.ListAPIView):
    """Incidents, the latest failure first (`?status=`, `?subject=`, `?cause=`)."""

    permission_classes = [IsAuthenticated, allowed("incident.view")]
    serializer_class = rs.IncidentSerializer

    def get_queryset(self):
        query = rs.IncidentQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        qs = Incident.objects.select_related("assignee", "acknowledged_by", "resolved_by").order_by(
            "-last_failure_at", "-id")
        for key in ("status", "subject", "cause"):
            if key in wanted:
                qs = qs.filter(**{key: wanted[key]})
        return qs

    @extend_schema(parameters=[rs.IncidentQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class IncidentDetailView(APIView):
    """One incident."""

    permission_classes = [IsAuthenticated, allowed("incident.view")]

    @extend_schema(responses={200: rs.IncidentSerializer, 404: NO_INCIDENT})
    def get(self, request: Request, pk: int) -> Response:
        return _incident_body(incidents.get_incident(request.user, pk))


class IncidentAcknowledgeView(APIView):
    """Say someone is on it (platform admins), with a note; the owner and admins are told. 409 when it
    is acknowledged or resolved already."""

    permission_classes = [IsAuthenticated, allowed("incident.manage")]

    @extend_schema(request=rs.AcknowledgeSerializer, responses={
        200: rs.IncidentSerializer, 404: NO_INCIDENT, 409: OpenApiResponse(description="not open")})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _incident_body(incidents.acknowledge(request.user, pk, body.validated_data["note"], source=SOURCE))


class IncidentAssignView(APIView):
    """Give the incident to an active user, or (`null`) to nobody (platform admins). 409 once resolved."""

    permission_classes = [IsAuthenticated, allowed("incident.manage")]

    @extend_schema(request=rs.AssignSerializer, responses={
        200: rs.IncidentSerializer, 404: NO_INCIDENT, 409: OpenApiResponse(description="resolved")})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _incident_body(incidents.assign(request.user, pk, body.validated_data["assignee"], source=SOURCE))


class IncidentResolveView(APIView):
    """Close the incident, saying what was done (platform admins). 409 when it is resolved already."""

    permission_classes = [IsAuthenticated, allowed("incident.manage")]

    @extend_schema(request=rs.ResolveSerializer, responses={
        200: rs.IncidentSerializer, 404: NO_INCIDENT, 409: OpenApiResponse(description="resolved already")})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _incident_body(incidents.resolve(request.user, pk, body.validated_data["resolution"],
                                                source=SOURCE))
