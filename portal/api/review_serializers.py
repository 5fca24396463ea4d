"""What the review API reads and writes (issue 6): the queue, one change's review, verdicts, comments,
CI builds, deployments and the auto-approval policy. Output serializers read the service layer's
objects as they are (runner.reviews, models_service.review, runner.models); inputs are parsed here
and checked again by the services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from models_service.models import ChangeState, Verdict
from models_service.review import MAX_COMMENT
from portal.api.serializers import ChangeSerializer, ModelDiffSerializer, TextField, version_field
from runner.models import BuildStatus, DeployStatus
from runner.policy import EDITABLE
from runner.reviews import SHOWS

# --------------------------------------------------------------------------- what CI found


class FindingSerializer(serializers.Serializer):
    """A validation error or a breaking change downstream, at a line and column of the model's SQL."""

    model = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class BuildValidationSerializer(serializers.Serializer):
    errors = FindingSerializer(many=True, required=False)
    breaking = FindingSerializer(many=True, required=False, help_text="columns downstream models use and "
                                                                      "this change drops")


class DataDiffSerializer(serializers.Serializer):
    key = serializers.CharField(required=False, help_text="the key rows were matched on")
    added = serializers.IntegerField(required=False)
    removed = serializers.IntegerField(required=False)
    changed = serializers.IntegerField(required=False, allow_null=True)
    note = serializers.CharField(required=False, help_text="why only part (or none) of the comparison was made")


class BuildNodeSerializer(serializers.Serializer):
    """One model or test of a CI build."""

    name = serializers.CharField()
    kind = serializers.CharField(help_text="model, seed or test")
    model = serializers.CharField(help_text="for a test, the model it tests")
    severity = serializers.CharField(allow_null=True, required=False, help_text="tests: error or warn")
    status = serializers.CharField(help_text="pending; models: success, error, skipped; tests: pass, warn, fail, "
                                             "error, skipped")
    message = serializers.CharField(allow_blank=True)
    seconds = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True, help_text="rows built; for a test, its failing rows")
    failing_rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()), required=False,
                                         help_text="a sample of a failing test's rows")
    failing_columns = serializers.ListField(child=serializers.CharField(), required=False)
    production_rows = serializers.IntegerField(allow_null=True, required=False,
                                               help_text="the model's rows in production; null: not there yet")
    diff = DataDiffSerializer(allow_null=True, required=False, help_text="rows added, removed and changed "
                                                                         "against production")


class PolicyRuleSerializer(serializers.Serializer):
    rule = serializers.CharField()
    label = serializers.CharField()
    on = serializers.BooleanField(help_text="the rule is switched on in the policy")
    met = serializers.BooleanField()
    figure = serializers.CharField(help_text="what decided it, in plain words")


class PolicyVerdictSerializer(serializers.Serializer):
    """The auto-approval policy's verdict on a build: each rule, met or not, with its figure. Null
    while none is recorded (the build's `policy` is then an empty object)."""

    enabled = serializers.BooleanField()
    eligible = serializers.BooleanField(help_text="every rule that is on was met")
    approved = serializers.BooleanField(required=False, help_text="the policy approved the change on this build")
    rules = PolicyRuleSerializer(many=True)
    summary = serializers.CharField()
    max_build_seconds = serializers.IntegerField()

    def to_representation(self, instance: Any) -> Any:
        return super().to_representation(instance) if instance else None


class CIBuildBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    change = serializers.IntegerField(source="change_id")
    sha = serializers.CharField(help_text="the commit of the change that was built")
    # Text here, the enum in CIBuild: one set of choices in two components makes drf-spectacular guess names.
    status = serializers.CharField(help_text=", ".join(BuildStatus.values))
    message = serializers.CharField(allow_blank=True)
    seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class CIBuildSerializer(CIBuildBriefSerializer):
    """A CI build: every model and test it ran, the editor's checks on the modified models, and the
    auto-approval policy's verdict (null until the build has been judged)."""

    status = serializers.ChoiceField(choices=BuildStatus.choices)
    is_current = serializers.SerializerMethodField(help_text="the build is of the change's latest version")
    schema = serializers.CharField(help_text="the CI schema it was built into")
    modified = serializers.ListField(child=serializers.CharField(), help_text="the models the change modifies")
    downstream = serializers.ListField(child=serializers.CharField(), help_text="built because they read a "
                                                                                "modified model")
    nodes = BuildNodeSerializer(many=True)
    validation = BuildValidationSerializer()
    policy = PolicyVerdictSerializer(allow_null=True)

    def get_is_current(self, build: Any) -> bool:
        return build.sha == build.change.head_sha


# --------------------------------------------------------------------------- deployments


class DeployNodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["model", "test"])
    status = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    seconds = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)


class DeploymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    change = serializers.IntegerField(source="change_id")
    sha = serializers.CharField(help_text="the merge commit on main that was deployed")
    target = serializers.CharField(help_text="the production schema")
    status = serializers.ChoiceField(choices=DeployStatus.choices)
    message = serializers.CharField(allow_blank=True, help_text="for a failed deploy: the cause")
    nodes = DeployNodeSerializer(many=True)
    seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


# --------------------------------------------------------------------------- comments and verdicts


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    author_name = serializers.SerializerMethodField()
    body = serializers.CharField()
    model = serializers.CharField(allow_blank=True, help_text="the model commented on; blank: the whole change")
    line = serializers.IntegerField(allow_null=True, help_text="the line of the model's SQL, from 1")
    sha = serializers.CharField(allow_blank=True, help_text="the change's version the comment was made on")
    reply_to = serializers.IntegerField(source="reply_to_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def get_author_name(self, comment: Any) -> str:
        return comment.author.get_full_name() or comment.author.get_username()


class CommentCreateSerializer(serializers.Serializer):
    body = TextField(max_length=MAX_COMMENT)
    model = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                  help_text="comment on one model of the change")
    line = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                    help_text="and on one line of its SQL (needs `model`)")
    reply_to = serializers.IntegerField(required=False, allow_null=True, default=None,
                                        help_text="a comment of this change to answer (its model and line are kept)")


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True,
                                     help_text="null: the auto-approval policy")
    by_policy = serializers.BooleanField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    sha = serializers.CharField(help_text="the version the verdict was given on")
    body = serializers.CharField(allow_blank=True)
    rule = serializers.CharField(allow_blank=True, help_text="the policy's rule that approved it")
    figures = serializers.DictField(help_text="what met each rule")
    created_at = serializers.DateTimeField()


class ApproveSerializer(serializers.Serializer):
    sha = version_field(required=False, allow_null=True, default=None,
                        help_text="the version you reviewed; if a newer one was saved since, 409")
    body = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_COMMENT,
                                 help_text="a comment with the approval")


class RequestChangesSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, max_length=MAX_COMMENT,
                                 error_messages={"required": "Say what should change, so the author knows what to do."},
                                 help_text="what the author should change")
    sha = version_field(required=False, allow_null=True, default=None,
                        help_text="the version you reviewed; if a newer one was saved since, 409")
    model = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    line = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)


# --------------------------------------------------------------------------- the queue and the review page


class QueueQuerySerializer(serializers.Serializer):
    show = serializers.ChoiceField(choices=SHOWS, required=False, default="all",
                                   help_text="mine: waiting on a decision you may make; overdue: past due")


class QueueItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    author = serializers.CharField()
    state = serializers.ChoiceField(choices=ChangeState.choices)
    submitted_at = serializers.DateTimeField(allow_null=True)
    due = serializers.DateTimeField(allow_null=True, help_text="3 working days after submission")
    overdue = serializers.BooleanField()
    age_hours = serializers.FloatField(allow_null=True)
    models = serializers.ListField(child=serializers.CharField(), help_text="from its latest CI build")
    ci_status = serializers.CharField(help_text="the latest CI build's status, or `not built`")
    ci_stale = serializers.BooleanField(help_text="the latest build is of an older version")
    breaking = FindingSerializer(many=True)
    auto_approval_eligible = serializers.BooleanField(allow_null=True, help_text="null: not judged yet")
    policy_summary = serializers.CharField(allow_blank=True)
    needs_update = serializers.BooleanField()


class PolicySerializer(serializers.Serializer):
    """The auto-approval policy's rules."""

    enabled = serializers.BooleanField(help_text="off: every change waits for a reviewer")
    max_build_seconds = serializers.IntegerField(help_text="the longest build the policy approves")
    require_build_passed = serializers.BooleanField()
    require_tests_passed = serializers.BooleanField()
    require_fast_build = serializers.BooleanField()
    require_no_breaking_change = serializers.BooleanField()
    require_no_validation_error = serializers.BooleanField()
    merge_on_approval = serializers.BooleanField(help_text="merge and deploy once approved (by anyone)")
    updated_at = serializers.DateTimeField(read_only=True)


class PolicyUpdateSerializer(serializers.Serializer):
    """The settings to change; those left out stay as they are. Only true or false for the switches."""

    enabled = serializers.BooleanField(required=False)
    max_build_seconds = serializers.IntegerField(required=False, min_value=1, max_value=24 * 3600)
    require_build_passed = serializers.BooleanField(required=False)
    require_tests_passed = serializers.BooleanField(required=False)
    require_fast_build = serializers.BooleanField(required=False)
    require_no_breaking_change = serializers.BooleanField(required=False)
    require_no_validation_error = serializers.BooleanField(required=False)
    merge_on_approval = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(set(sent) - set(EDITABLE))
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"Unknown setting {', '.join(unknown)}; use {', '.join(EDITABLE)}."]})
        if not attrs:
            raise serializers.ValidationError(f"Send at least one setting: {', '.join(EDITABLE)}.")
        return attrs


class ReviewPageSerializer(serializers.Serializer):
    """Everything the review of one change needs (runner.reviews.review_data)."""

    change = ChangeSerializer()
    due = serializers.DateTimeField(allow_null=True, help_text="3 working days after submission")
    diffs = ModelDiffSerializer(many=True, help_text="per model, SQL and yml against main")
    build = CIBuildSerializer(allow_null=True, help_text="the build of the latest version, else the newest")
    build_is_current = serializers.BooleanField()
    builds = CIBuildBriefSerializer(many=True, help_text="the latest 10, newest first")
    validation = BuildValidationSerializer(help_text="the editor's checks, from the build")
    lineage = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    help_text="per model, the models on main downstream of it")
    comments = CommentSerializer(many=True)
    reviews = ReviewSerializer(many=True)
    policy = PolicyVerdictSerializer(allow_null=True, help_text="the policy's verdict on the build; null: not judged")
    policy_settings = PolicySerializer()
    deployment = DeploymentSerializer(allow_null=True, help_text="the latest deployment, once merged")
    can_review = serializers.BooleanField(help_text="you may approve or request changes now")
    can_comment = serializers.BooleanField()
    is_author = serializers.BooleanField()
