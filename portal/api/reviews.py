"""API views of reviewing change requests (issue 6): the queue, one change's review, verdicts,
comments, CI builds, deployments and the auto-approval policy.

Thin, as the pages: parse with a serializer, call the service function the page calls
(runner.reviews / ci / deploy / policy, models_service.review), answer. Object rules live in the
services: a change the caller may not see is a 404, and so are its builds, deployments and comments;
nobody reviews their own change (403); a verdict on a version that is no longer the change's latest
is a 409. Service errors become the API's error shape in portal/api/errors.py.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import changes, review
from models_service.access import POLICY, can
from models_service.errors import NotFound
from portal.api import review_serializers as rs
from portal.api.frame import allowed
from portal.api.serializers import ChangeSerializer
from runner import ci, policy, reviews
from runner.models import CIBuild, Deployment, ReviewPolicy

SOURCE = "api"
HIDDEN = OpenApiResponse(description="no such change, or one you may not see")
STALE = OpenApiResponse(description="a newer version was saved after `sha`, or the change is not under review")


def any_of(*actions: str) -> type[BasePermission]:
    """A permission class for callers whose roles allow at least one of `actions`."""
    roles = sorted({role.label.lower() for action in actions for role in POLICY[action]})

    class AnyOf(BasePermission):
        message = f"This needs one of these roles: {', '.join(roles)}. Ask a platform admin if you need it."

        def has_permission(self, request: Any, view: Any) -> bool:
            return any(can(request.user, action) for action in actions)

    AnyOf.__name__ = AnyOf.__qualname__ = "Allowed_" + "_or_".join(a.replace(".", "_") for a in actions)
    return AnyOf


def _change(request: Request, pk: int) -> Any:
    return changes.get_change(request.user, pk)


def _through_change(request: Request, obj: Any, what: str, pk: int) -> Any:
    """`obj` if the caller may see its change; else (or when there is none) a 404 that names `what`."""
    if obj is not None:
        try:
            obj.change = changes.get_change(request.user, obj.change_id)
            return obj
        except NotFound:
            pass
    raise NotFound(f"There is no {what} {pk}.")


# --------------------------------------------------------------------------- the queue and one change


class ReviewQueueView(APIView):
    """The changes under review, soonest due first: due time (3 working days after submission), age,
    models touched, CI status, breaking changes and whether the policy would approve it.
    `?show=mine`: those waiting on a decision you may make (not your own); `?show=overdue`."""

    permission_classes = [IsAuthenticated, allowed("change.review")]

    @extend_schema(parameters=[rs.QueueQuerySerializer], responses=rs.QueueItemSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = rs.QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = reviews.review_queue(request.user, query.validated_data["show"])
        return Response(rs.QueueItemSerializer([i.as_dict() for i in items], many=True).data)


class ChangeReviewView(APIView):
    """Everything a change's review needs: the diff, its latest CI build (models, tests with failing
    rows, data diff, validation), the models downstream, comments and verdicts, the policy's verdict,
    the latest deployment, and what you may do."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: rs.ReviewPageSerializer, 404: HIDDEN})
    def get(self, request: Request, pk: int) -> Response:
        return Response(rs.ReviewPageSerializer(reviews.review_data(request.user, pk)).data)


class ChangeApproveView(APIView):
    """Approve the change at its latest version (reviewers and admins; never one's own change)."""

    permission_classes = [IsAuthenticated, allowed("change.review")]

    @extend_schema(request=rs.ApproveSerializer, responses={200: ChangeSerializer, 404: HIDDEN, 409: STALE})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = review.approve_change(request.user, pk, sha=body.validated_data["sha"],
                                       body=body.validated_data["body"], source=SOURCE)
        return Response(ChangeSerializer(change).data)


class ChangeRequestChangesView(APIView):
    """Send the change back to its author, saying what should change (optionally on a model's line)."""

    permission_classes = [IsAuthenticated, allowed("change.review")]

    @extend_schema(request=rs.RequestChangesSerializer, responses={200: ChangeSerializer, 404: HIDDEN, 409: STALE})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.RequestChangesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        change = review.request_changes(request.user, pk, data["body"], sha=data["sha"], model=data["model"],
                                        line=data["line"], source=SOURCE)
        return Response(ChangeSerializer(change).data)


class ChangeCommentsView(APIView):
    """The change's comments, oldest first (`reply_to` makes threads). POST adds one: on the change,
    on a model (`model`), on a line of its SQL (`model`, `line`) or as a reply (`reply_to`)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), allowed("change.comment")()]
        return super().get_permissions()

    @extend_schema(responses={200: rs.CommentSerializer(many=True), 404: HIDDEN})
    def get(self, request: Request, pk: int) -> Response:
        return Response(rs.CommentSerializer(review.comments_of(_change(request, pk)), many=True).data)

    @extend_schema(request=rs.CommentCreateSerializer, responses={201: rs.CommentSerializer, 404: HIDDEN})
    def post(self, request: Request, pk: int) -> Response:
        body = rs.CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        comment = review.add_comment(request.user, pk, data["body"], model=data["model"], line=data["line"],
                                     reply_to=data["reply_to"], source=SOURCE)
        return Response(rs.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- CI builds and deployments


class ChangeBuildsView(APIView):
    """The change's CI builds, newest first. POST builds its latest version again (its author,
    reviewers, admins): 202 with the queued build to poll at /api/v1/ci-builds/{id}."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), any_of("model.edit", "change.review")()]
        return super().get_permissions()

    @extend_schema(responses={200: rs.CIBuildSerializer(many=True), 404: HIDDEN})
    def get(self, request: Request, pk: int) -> Response:
        change = _change(request, pk)
        builds = CIBuild.objects.filter(change=change).select_related("change").order_by("-created_at", "-id")
        return Response(rs.CIBuildSerializer(builds, many=True).data)

    @extend_schema(request=None, responses={202: rs.CIBuildSerializer, 404: HIDDEN,
                                            409: OpenApiResponse(description="the change is closed")})
    def post(self, request: Request, pk: int) -> Response:
        build = ci.retry_build(request.user, _change(request, pk))
        return Response(rs.CIBuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)


class BuildDetailView(APIView):
    """One CI build, as the review page polls it (404 when its change is one you may not see)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: rs.CIBuildSerializer, 404: OpenApiResponse(description="no such build")})
    def get(self, request: Request, pk: int) -> Response:
        build = _through_change(request, CIBuild.objects.filter(pk=pk).first(), "CI build", pk)
        return Response(rs.CIBuildSerializer(build).data)


class ChangeDeploymentsView(APIView):
    """The deployments of a merged change into production, newest first."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: rs.DeploymentSerializer(many=True), 404: HIDDEN})
    def get(self, request: Request, pk: int) -> Response:
        found = Deployment.objects.filter(change=_change(request, pk)).order_by("-created_at", "-id")
        return Response(rs.DeploymentSerializer(found, many=True).data)


class DeploymentDetailView(APIView):
    """One deployment: each model and test it ran, and for a failed one the cause."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: rs.DeploymentSerializer, 404: OpenApiResponse(description="no such deployment")})
    def get(self, request: Request, pk: int) -> Response:
        deployment = _through_change(request, Deployment.objects.filter(pk=pk).first(), "deployment", pk)
        return Response(rs.DeploymentSerializer(deployment).data)


# --------------------------------------------------------------------------- the auto-approval policy


class ReviewPolicyView(APIView):
    """The auto-approval policy's rules (reviewers read them). PATCH changes the settings sent, and
    only those (platform admins); every change is in the audit log."""

    permission_classes = [IsAuthenticated, allowed("change.review")]

    def get_permissions(self) -> list[Any]:
        if self.request.method == "PATCH":
            return [IsAuthenticated(), allowed("policy.manage")()]
        return super().get_permissions()

    @extend_schema(responses=rs.PolicySerializer)
    def get(self, request: Request) -> Response:
        return Response(rs.PolicySerializer(ReviewPolicy.current()).data)

    @extend_schema(request=rs.PolicyUpdateSerializer, responses=rs.PolicySerializer)
    def patch(self, request: Request) -> Response:
        body = rs.PolicyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(rs.PolicySerializer(policy.update_policy(request.user, body.validated_data,
                                                                 source=SOURCE)).data)
