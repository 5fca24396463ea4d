"""What the API reads and writes. Output serializers never carry a token's secret except once,
in TokenCreatedSerializer, in the answer to the request that created it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from models_service.access import Role
from models_service.models.audit import AuditEntry
from models_service.models.changes import ChangeState
from portal.models import ApiToken, RevokeReason


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
    # Declared: a read-only model field loses allow_blank, and a live token's reason is "".
    revoked_reason = serializers.ChoiceField(choices=RevokeReason.choices, allow_blank=True, read_only=True,
                                             help_text="empty while the token is live")

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


# --------------------------------------------------------------------------- change requests and models


class ChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    author = serializers.CharField(source="author.username")
    author_name = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=ChangeState.choices)
    state_label = serializers.CharField(source="get_state_display")
    branch = serializers.CharField(source="branch_name", help_text="the git branch, for engineers")
    base_sha = serializers.CharField(help_text="main's commit the change was cut from or last updated with")
    head_sha = serializers.CharField(help_text="the change's latest saved version")
    approved_sha = serializers.CharField()
    merged_sha = serializers.CharField()
    needs_update = serializers.BooleanField(help_text="main moved on: bring it in with POST .../update")
    update_reason = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    merged_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_author_name(self, change: Any) -> str:
        return change.author.get_full_name() or change.author.get_username()


class ChangeCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class ChangeUpdateSerializer(serializers.Serializer):
    resolutions = serializers.DictField(
        child=serializers.ChoiceField(choices=["mine", "theirs"]),
        required=False,
        help_text="for each model changed on both sides: keep `mine` or take `theirs` (main's)",
    )


class TextField(serializers.CharField):
    """Text, and only text: DRF's CharField would take a number and save "5" as a model's SQL."""

    default_error_messages = {"not_text": "Send text here, not {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text", kind=type(data).__name__)
        return super().to_internal_value(data)


def version_field(**kw: Any) -> serializers.RegexField:
    """A version: a full 40-character commit sha, as the API hands them out."""
    return serializers.RegexField(r"^[0-9a-f]{40}\Z", error_messages={
        "invalid": "A version is the 40-character id the API gave you (`commit` or `sha`)."}, **kw)


class TestField(serializers.JSONField):
    """A test as in dbt's yml: `"unique"` or `{"accepted_values": {"values": ["a", "b"]}}`."""


class ColumnInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    data_type = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None)
    data_tests = serializers.ListField(child=TestField(), required=False, default=list)


class ModelSaveSerializer(serializers.Serializer):
    sql = TextField(allow_blank=True, trim_whitespace=False, help_text="the model's SQL (with Jinja), as typed")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    columns = ColumnInputSerializer(many=True, required=False, default=list)
    data_tests = serializers.ListField(child=TestField(), required=False, default=list)
    config = serializers.DictField(
        required=False, default=dict, help_text="dbt config (materialized, tags, meta, ...); keys not sent are kept"
    )
    base_sha = version_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="the version you loaded the model at; if it changed since, 409 with the current version",
    )
    message = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    folder = serializers.CharField(required=False, allow_null=True, default=None, help_text="new model: under models/")


class ModelDeleteSerializer(serializers.Serializer):
    base_sha = version_field(required=False, allow_null=True, default=None)
    message = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)


class ModelRenameSerializer(ModelDeleteSerializer):
    new_name = serializers.CharField(max_length=200)


class SaveResultSerializer(serializers.Serializer):
    sha = serializers.CharField(help_text="the change's latest version after the write")
    change = serializers.IntegerField(source="change.pk")
    changed = serializers.BooleanField(help_text="false: the files were already so, nothing was committed")
    created = serializers.BooleanField()
    opened = serializers.BooleanField(help_text="a change was opened for this write")
    message = serializers.CharField()
    sql_path = serializers.CharField()
    yml_path = serializers.CharField()


class ModelVersionSerializer(serializers.Serializer):
    name = serializers.CharField()
    commit = serializers.CharField()
    sql = serializers.CharField()
    properties = serializers.DictField(help_text="the model's yml entry")
    sql_path = serializers.CharField()
    yml_path = serializers.CharField(allow_null=True)
    last_change = serializers.DictField()


class ModelDiffSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["added", "modified", "deleted", "renamed"])
    old_name = serializers.CharField(allow_null=True)
    sql_before = serializers.CharField()
    sql_after = serializers.CharField()
    properties_before = serializers.CharField()
    properties_after = serializers.CharField()
    sql_diff = serializers.CharField(help_text="unified diff")
    properties_diff = serializers.CharField(help_text="unified diff")
    paths = serializers.ListField(child=serializers.CharField())


class CommitSerializer(serializers.Serializer):
    sha = serializers.CharField()
    author = serializers.CharField()
    email = serializers.CharField()
    at = serializers.DateTimeField()
    message = serializers.CharField()


class HistoryEntrySerializer(serializers.Serializer):
    sha = serializers.CharField()
    author = serializers.CharField()
    email = serializers.CharField()
    at = serializers.DateTimeField()
    message = serializers.CharField()
    parts = serializers.ListField(child=serializers.CharField(), help_text="SQL, properties, created, ...")
    name = serializers.CharField(help_text="the model's name in that version")


class IndexedColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    data_type = serializers.CharField()
    tests = serializers.ListField(child=serializers.CharField())


class IndexedNodeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    materialized = serializers.CharField()
    path = serializers.CharField()
    depends_on = serializers.ListField(child=serializers.CharField())
    tags = serializers.SerializerMethodField()
    columns = IndexedColumnSerializer(many=True)
    commit = serializers.CharField(source="commit_sha")

    def get_tags(self, node: Any) -> list[str]:
        return sorted(t.tag for t in node.tags.all())


class RevertSerializer(serializers.Serializer):
    to_sha = version_field(help_text="the version to put the model back to (from its history)")
    change = serializers.IntegerField(required=False, allow_null=True, default=None,
                                      help_text="an open change of yours to do it in; a new one if left out")


class ProjectListingSerializer(serializers.Serializer):
    commit = serializers.CharField()
    models = serializers.ListField(child=serializers.DictField())
    sources = serializers.ListField(child=serializers.DictField())
    seeds = serializers.ListField(child=serializers.DictField())
    macros = serializers.ListField(child=serializers.DictField())
    tests = serializers.ListField(child=serializers.DictField())
    problems = serializers.ListField(child=serializers.CharField())
