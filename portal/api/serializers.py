"""What the API reads and writes. Output serializers never carry a token's secret except once,
in TokenCreatedSerializer, in the answer to the request that created it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from models_service.access import Role
from models_service.models.audit import AuditEntry
from portal.models import ApiToken


def listed_roles(user: Any) -> list[str]:
    """Roles from prefetched groups (no query per user in lists); a superuser is an admin."""
    names = {group.name for group in user.groups.all()}
    if user.is_superuser:
        names.add(Role.ADMIN.value)
    return sorted(role.value for role in Role if role.value in names)


class TokenSummarySerializer(serializers.Serializer):
    prefix = serializers.CharField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    permissions = serializers.ListField(child=serializers.CharField(), help_text="actions the roles allow")
    authentication = serializers.ChoiceField(choices=["token", "session"])
    token = TokenSummarySerializer(allow_null=True, help_text="the token of this request, if any")


class TokenSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="user.username", read_only=True)
    display = serializers.CharField(read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "owner",
            "prefix",
            "display",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_reason",
        ]
        read_only_fields = fields

    def get_status(self, token: ApiToken) -> str:
        return token.status()


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_in_days = serializers.IntegerField(required=False, min_value=1, help_text="default 30")
    user = serializers.CharField(
        required=False, help_text="whose token (platform admins only); yourself if left out"
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="shown this once; only its hash is kept")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    full_name = serializers.CharField(source="get_full_name")
    is_active = serializers.BooleanField()
    roles = serializers.SerializerMethodField()
    last_login = serializers.DateTimeField(allow_null=True)
    date_joined = serializers.DateTimeField()

    def get_roles(self, user: Any) -> list[str]:
        return listed_roles(user)


class UserUpdateSerializer(serializers.Serializer):
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Role.choices), required=False, help_text="exactly these roles"
    )
    is_active = serializers.BooleanField(
        required=False, help_text="false deactivates and revokes every token"
    )


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "sha",
            "source",
            "details",
        ]
        read_only_fields = fields
