"""API views of the data-models repository: change requests, models in a change, models on main.

Thin, as the pages: parse with a serializer, call the service function the page calls
(models_service.changes / merging / reading / index), answer. Object rules (drafts are private,
nobody edits another's change) live in the services: a change the caller may not see is a 404.
Service errors become the API's error shape in portal/api/errors.py (a stale `base_sha` is a 409
carrying the current version).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import changes, index, merging, reading
from models_service.models import ChangeState
from models_service.project_files import ProjectFileError, model_spec
from portal.api import serializers as s
from portal.api.frame import allowed

SOURCE = "api"
CONFLICT = OpenApiResponse(description="the model changed since `base_sha`: `error.current` holds it now")


def _change(request: Request, pk: int) -> Any:
    return changes.get_change(request.user, pk)


def _change_body(change: Any, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(s.ChangeSerializer(change).data, status=status_code)


def _tests(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError({field: ["A list of tests, as in dbt's yml: \"unique\" or {\"accepted_values\": ...}."]})
    return value


def spec_from(name: str, data: dict[str, Any]) -> Any:
    """The ModelSpec of a save's body, read by the same parser as the project's yml files."""
    node: dict[str, Any] = {"name": name, "description": data.get("description") or ""}
    if data.get("config"):
        node["config"] = data["config"]
    if data.get("data_tests"):
        node["data_tests"] = _tests(data["data_tests"], "data_tests")
    columns = []
    for i, col in enumerate(data.get("columns") or []):
        entry = {"name": col["name"], "description": col.get("description") or ""}
        if col.get("data_type"):
            entry["data_type"] = col["data_type"]
        if col.get("data_tests"):
            entry["data_tests"] = _tests(col["data_tests"], f"columns.{i}.data_tests")
        columns.append(entry)
    if columns:
        node["columns"] = columns
    try:
        return model_spec(node, "the request")
    except ProjectFileError as exc:
        raise ValidationError({"non_field_errors": [f"{exc.message}. {exc.hint}".strip()]}) from exc


# --------------------------------------------------------------------------- change requests


class ChangeListView(generics.ListAPIView):
    """Change requests you may see, newest first: yours; reviewers and admins also everyone's submitted ones.
    POST opens a new draft change (its branch is cut from main)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]
    serializer_class = s.ChangeSerializer

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), allowed("model.edit")()]
        return super().get_permissions()

    def get_queryset(self):
        qs = changes.visible_changes(self.request.user)
        params = self.request.query_params
        if params.get("state"):
            wanted = params.get("state").split(",")
            unknown = sorted(set(wanted) - set(ChangeState.values) - {"open"})
            if unknown:
                raise ValidationError({"state": [f"Unknown state {', '.join(unknown)}; use {', '.join(ChangeState.values)} or open."]})
            states = set(wanted) - {"open"}
            if "open" in wanted:
                states |= {str(v) for v in changes.OPEN_STATES}
            qs = qs.filter(state__in=states)
        if params.get("mine") in ("true", "1"):
            qs = qs.filter(author=self.request.user)
        if params.get("author"):
            qs = qs.filter(author__username=params["author"])
        return qs

    @extend_schema(parameters=[
        OpenApiParameter("state", str, description="comma-separated states, or `open`"),
        OpenApiParameter("mine", bool, description="only changes you authored"),
        OpenApiParameter("author", str, description="username"),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.ChangeCreateSerializer, responses={201: s.ChangeSerializer})
    def post(self, request: Request) -> Response:
        body = s.ChangeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = changes.open_change(request.user, body.validated_data["title"],
                                     body.validated_data["description"], source=SOURCE)
        return _change_body(changes.get_change(request.user, change.pk), status.HTTP_201_CREATED)


class ChangeDetailView(APIView):
    """One change request."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses=s.ChangeSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return _change_body(_change(request, pk))


def _transition(verb: str, service: Any, doc: str) -> type[APIView]:
    """POST /changes/{id}/<verb>: one state move of the change (409 when its state does not allow it)."""

    class Transition(APIView):
        permission_classes = [IsAuthenticated, allowed("model.edit")]

        @extend_schema(request=None, responses={200: s.ChangeSerializer, 409: OpenApiResponse(description="invalid state")},
                       operation_id=f"changes_{verb}", description=doc)
        def post(self, request: Request, pk: int) -> Response:
            change = service(request.user, _change(request, pk), source=SOURCE)
            return _change_body(change)

    Transition.__name__ = Transition.__qualname__ = f"Change{verb.title()}View"
    Transition.__doc__ = doc
    return Transition


ChangeSubmitView = _transition("submit", changes.submit_change,
                               "Submit a draft (or a change sent back) for review: the review clock starts.")
ChangeWithdrawView = _transition("withdraw", changes.withdraw_change,
                                 "Take a change back from review to draft; its saves stay.")
ChangeAbandonView = _transition("abandon", changes.abandon_change,
                                "Close a change without merging; its saved versions are kept.")


class ChangeUpdateView(APIView):
    """Bring main's newer versions into the change (the one-click update). A model changed on both sides
    needs a choice in `resolutions`; without one, 409 lists the conflicts in plain words."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=s.ChangeUpdateSerializer, responses={200: s.ChangeSerializer, 409: CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        body = s.ChangeUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = merging.update_change(request.user, _change(request, pk), body.validated_data.get("resolutions"),
                                       source=SOURCE)
        return _change_body(result.change)


class ChangeMergeView(APIView):
    """Merge an approved change into main (reviewers and admins; never one's own change)."""

    permission_classes = [IsAuthenticated, allowed("change.review")]

    @extend_schema(request=None, responses={200: s.ChangeSerializer, 409: CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        result = merging.merge_change(request.user, _change(request, pk), source=SOURCE)
        return _change_body(result.change)


class ChangeDiffView(APIView):
    """Each model the change adds, edits, renames or deletes, against where it left main: SQL and yml."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses=s.ModelDiffSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        diffs = reading.change_diff(request.user, _change(request, pk))
        return Response(s.ModelDiffSerializer([d.as_dict() for d in diffs], many=True).data)


class ChangeCommitsView(APIView):
    """The change's saved versions since it left main, newest first: who, when, message."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses=s.CommitSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.CommitSerializer(reading.change_commits(request.user, _change(request, pk)), many=True).data)


# --------------------------------------------------------------------------- models in a change


class ChangeModelListView(APIView):
    """The models as the change sees them (main's, with the change's own edits laid over)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses=s.IndexedNodeSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        nodes = index.models_in(request.user, _change(request, pk))
        return Response(s.IndexedNodeSerializer(nodes, many=True).data)


class ChangeModelView(APIView):
    """A model in a change. GET reads it (the editor's load: keep `commit` as the next save's `base_sha`);
    PUT saves its SQL and properties as one commit authored by you (201 when it creates the model);
    DELETE removes it in one commit."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    def get_permissions(self) -> list[Any]:
        if self.request.method in ("PUT", "DELETE"):
            return [IsAuthenticated(), allowed("model.edit")()]
        return super().get_permissions()

    @extend_schema(responses=s.ModelVersionSerializer)
    def get(self, request: Request, pk: int, name: str) -> Response:
        version = reading.get_model(request.user, name, change=_change(request, pk))
        return Response(s.ModelVersionSerializer(version.as_dict()).data)

    @extend_schema(request=s.ModelSaveSerializer,
                   responses={200: s.SaveResultSerializer, 201: s.SaveResultSerializer, 409: CONFLICT})
    def put(self, request: Request, pk: int, name: str) -> Response:
        body = s.ModelSaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        change = _change(request, pk)
        result = changes.save_model(request.user, change, name, data["sql"], spec_from(name, data),
                                    base_sha=data["base_sha"], message=data["message"], folder=data["folder"],
                                    source=SOURCE)
        code = status.HTTP_201_CREATED if result.created and result.changed else status.HTTP_200_OK
        return Response(s.SaveResultSerializer(result).data, status=code)

    @extend_schema(request=s.ModelDeleteSerializer, responses={200: s.SaveResultSerializer, 409: CONFLICT})
    def delete(self, request: Request, pk: int, name: str) -> Response:
        body = s.ModelDeleteSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        result = changes.delete_model(request.user, _change(request, pk), name, body.validated_data["base_sha"],
                                      body.validated_data["message"], source=SOURCE)
        return Response(s.SaveResultSerializer(result).data)


class ChangeModelRenameView(APIView):
    """Rename a model in a change (its SQL file and properties entry, one commit). Models that use the
    old name are not rewritten: the answer lists them in `dependents`."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=s.ModelRenameSerializer, responses={200: s.SaveResultSerializer, 409: CONFLICT})
    def post(self, request: Request, pk: int, name: str) -> Response:
        body = s.ModelRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = changes.rename_model(request.user, _change(request, pk), name, data["new_name"], data["base_sha"],
                                      data["message"], source=SOURCE)
        dependents = index.dependents_of(request.user, name)
        return Response(s.SaveResultSerializer(result).data | {"dependents": dependents})


# --------------------------------------------------------------------------- models on main


class ModelListView(generics.ListAPIView):
    """Models (and with `?kind=`, seeds and sources) on main, from the repository's index.
    `?q=` searches names, tags, columns and descriptions, best match first."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]
    serializer_class = s.IndexedNodeSerializer

    def get_queryset(self):
        params = self.request.query_params
        kind = params.get("kind") or "model"
        if kind not in ("model", "seed", "source", "all"):
            raise ValidationError({"kind": ["Use model, seed, source or all."]})
        kind_filter = None if kind == "all" else kind
        if params.get("q"):
            return index.search_catalog(self.request.user, params["q"], kind=kind_filter, limit=200)
        if params.get("tag"):
            return [n for n in index.find_by_tag(self.request.user, params["tag"]) if not kind_filter or n.kind == kind_filter]
        if params.get("owner"):
            return [n for n in index.find_by_owner(self.request.user, params["owner"])
                    if not kind_filter or n.kind == kind_filter]
        return index.models_in(self.request.user, None, kind=kind_filter)

    @extend_schema(parameters=[
        OpenApiParameter("kind", str, enum=["model", "seed", "source", "all"]),
        OpenApiParameter("q", str, description="search"),
        OpenApiParameter("tag", str),
        OpenApiParameter("owner", str),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ModelDetailView(APIView):
    """A model's SQL and properties on main, or at a version with `?at=SHA`."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[OpenApiParameter("at", str, description="a version (commit sha)")],
                   responses=s.ModelVersionSerializer)
    def get(self, request: Request, name: str) -> Response:
        version = reading.get_model(request.user, name, at=request.query_params.get("at"))
        return Response(s.ModelVersionSerializer(version.as_dict()).data)


class ModelHistoryView(APIView):
    """Every version of a model on main, newest first, following renames: who, when, message, what changed."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="at most 200; 50 if left out")],
                   responses=s.HistoryEntrySerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 200)
        except ValueError:
            raise ValidationError({"limit": ["A whole number from 1 to 200."]}) from None
        entries = reading.model_history(request.user, name, limit=limit)
        return Response(s.HistoryEntrySerializer([e.__dict__ for e in entries], many=True).data)


class ModelVersionDiffView(APIView):
    """What one version changed in a model, against the version before it."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(responses={200: s.ModelDiffSerializer, 404: OpenApiResponse(description="no such version")})
    def get(self, request: Request, name: str, sha: str) -> Response:
        diff = reading.version_diff(request.user, name, sha)
        if diff is None:
            return Response(None, status=status.HTTP_204_NO_CONTENT)
        return Response(s.ModelDiffSerializer(diff.as_dict()).data)


class ModelRevertView(APIView):
    """Put a model back as it was at an earlier version, as a new save in a change (a new change if
    `change` is left out). Answers with the save and the change."""

    permission_classes = [IsAuthenticated, allowed("model.edit")]

    @extend_schema(request=s.RevertSerializer, responses={201: s.SaveResultSerializer, 200: s.SaveResultSerializer})
    def post(self, request: Request, name: str) -> Response:
        body = s.RevertSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = body.validated_data["change"]
        target = _change(request, change) if change is not None else None
        result = merging.revert_model(request.user, name, body.validated_data["to_sha"], target, source=SOURCE)
        code = status.HTTP_201_CREATED if result.opened else status.HTTP_200_OK
        return Response(s.SaveResultSerializer(result).data, status=code)


class ProjectView(APIView):
    """The project's models, sources, seeds, macros and singular tests, straight from git: on main, on a
    change (`?change=ID`) or at a version (`?at=SHA`)."""

    permission_classes = [IsAuthenticated, allowed("catalog.view")]

    @extend_schema(parameters=[OpenApiParameter("change", int), OpenApiParameter("at", str)],
                   responses=s.ProjectListingSerializer)
    def get(self, request: Request) -> Response:
        change = request.query_params.get("change")
        if change is not None and not change.isdigit():
            raise ValidationError({"change": ["A change request's number."]})
        listing = reading.list_project(request.user, change=int(change) if change else None,
                                       at=request.query_params.get("at"))
        return Response(s.ProjectListingSerializer(listing.__dict__).data)
