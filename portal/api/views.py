"""API views of people and access: who am I, tokens, users, the audit log.

Thin, as the pages: parse, check, call a service (portal/tokens.py, portal/accounts.py,
models_service/audit.py), answer. Querysets come from the services, already limited to what the
caller may see, so another user's token is a 404, not a 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_service import audit
from models_service.access import can, permissions_of, roles_of
from portal import accounts, tokens
from portal.api import serializers as s
from portal.api.frame import allowed
from portal.forms import AuditFilterForm
from portal.models import ApiToken

SOURCE = "api"


def form_errors(form: Any) -> ValidationError:
    return ValidationError(
        {name: [e["message"] for e in errs] for name, errs in form.errors.get_json_data().items()}
    )


class MeView(APIView):
    """Who the caller is: username, roles and the actions those roles allow."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request: Request) -> Response:
        user, token = request.user, request.auth if isinstance(request.auth, ApiToken) else None
        body = {
            "username": user.get_username(),
            "email": user.email,
            "full_name": user.get_full_name(),
            "roles": sorted(role.value for role in roles_of(user)),
            "permissions": permissions_of(user),
            "authentication": "token" if token else "session",
            "token": token and {"prefix": token.prefix, "name": token.name, "expires_at": token.expires_at},
        }
        return Response(s.MeSerializer(body).data)


class TokenListView(generics.ListCreateAPIView):
    """Your API tokens (a platform admin: anyone's, with `?user=NAME`); POST creates one, shown once."""

    permission_classes = [IsAuthenticated, allowed("token.manage_own")]
    serializer_class = s.TokenSerializer

    def get_queryset(self):
        # One's own by default; `?user=NAME` finds another's only for those who may see them.
        name = self.request.query_params.get("user")
        return tokens.tokens_visible_to(self.request.user).filter(
            user__username=name or self.request.user.username
        )

    @extend_schema(
        parameters=[OpenApiParameter("user", str, description="whose tokens (platform admins only)")]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.auth, ApiToken):
            # A token that mints tokens would outlive its own expiry and revocation.
            raise PermissionDenied(
                "A token cannot create tokens: log in, or use `manage.py dmaas_user --token`."
            )
        form = s.TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        owner = request.user
        if form.validated_data.get("user"):
            if not can(request.user, "token.manage_any"):
                raise PermissionDenied("Only platform admins create tokens for other users.")
            owner = get_object_or_404(get_user_model(), username=form.validated_data["user"])
        issued = tokens.create_token(
            request.user,
            owner,
            name=form.validated_data["name"],
            days=form.validated_data.get("expires_in_days"),
            source=SOURCE,
        )
        body = s.TokenCreatedSerializer(issued.token).data | {"token": issued.raw}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TokenDetailView(generics.RetrieveDestroyAPIView):
    """One token; DELETE revokes it (it stays listed, as revoked)."""

    permission_classes = [IsAuthenticated, allowed("token.manage_own")]
    serializer_class = s.TokenSerializer

    def get_queryset(self):
        return tokens.tokens_visible_to(self.request.user)

    def perform_destroy(self, instance: ApiToken) -> None:
        tokens.revoke_token(self.request.user, instance, source=SOURCE)


class UserListView(generics.ListAPIView):
    """Every user with roles and status (platform admins). Filters: `?role=`, `?is_active=`."""

    permission_classes = [IsAuthenticated, allowed("user.manage")]
    serializer_class = s.UserSerializer

    def get_queryset(self):
        users = accounts.users_visible_to(self.request.user)
        role = self.request.query_params.get("role")
        if role:
            users = users.filter(groups__name=role)
        active = self.request.query_params.get("is_active")
        if active in ("true", "false"):
            users = users.filter(is_active=active == "true")
        return users

    @extend_schema(parameters=[OpenApiParameter("role", str), OpenApiParameter("is_active", bool)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class UserDetailView(generics.RetrieveUpdateAPIView):
    """One user; PATCH sets `roles` (exactly these) and/or `is_active` (platform admins)."""

    permission_classes = [IsAuthenticated, allowed("user.manage")]
    serializer_class = s.UserSerializer
    lookup_field = "username"
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return accounts.users_visible_to(self.request.user)

    @extend_schema(request=s.UserUpdateSerializer, responses=s.UserSerializer)
    def patch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = self.get_object()
        change = s.UserUpdateSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        accounts.update_user(
            request.user,
            user,
            roles=change.validated_data.get("roles"),
            active=change.validated_data.get("is_active"),
            source=SOURCE,
        )
        return Response(s.UserSerializer(self.get_queryset().get(pk=user.pk)).data)


class AuditListView(generics.ListAPIView):
    """The audit log, newest first (platform admins, security)."""

    permission_classes = [IsAuthenticated, allowed("audit.view")]
    serializer_class = s.AuditEntrySerializer

    def get_queryset(self):
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise form_errors(form)
        return audit.entries(**form.filters())

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str, description="exact, or a family ending in a dot: `token.`"),
            OpenApiParameter("actor", str, description="username"),
            OpenApiParameter("source", str, enum=["page", "api", "worker", "policy", "cli"]),
            OpenApiParameter("object_type", str),
            OpenApiParameter("object_id", str),
            OpenApiParameter("sha", str, description="commit sha or its prefix"),
            OpenApiParameter("since", str, description="date, YYYY-MM-DD, inclusive"),
            OpenApiParameter("until", str, description="date, YYYY-MM-DD, inclusive"),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
