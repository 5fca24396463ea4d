"""The runner's records. More arrive with the scheduled runs (issue of the run scheduler)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TestRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"


class TestRun(models.Model):
    """One "Test my model": the model as saved at `commit` of a change, built into the requester's
    dev schema with its data tests. `steps` is the page's progress list, updated as each node ends."""

    __test__ = False  # not a pytest test class, whatever its name

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="test_runs")
    change = models.ForeignKey("models_service.ChangeRequest", on_delete=models.CASCADE, related_name="test_runs")
    model = models.CharField(max_length=200)
    commit = models.CharField(max_length=40)
    schema = models.CharField(max_length=63)
    status = models.CharField(max_length=10, choices=TestRunStatus.choices, default=TestRunStatus.QUEUED,
                              db_index=True)
    message = models.TextField(blank=True)  # for error: what went wrong, in plain words
    steps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requester", "change", "model"], name="runner_testrun_who_idx")]

    def __str__(self) -> str:
        return f"test run {self.pk} of {self.model} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (TestRunStatus.PASSED, TestRunStatus.FAILED, TestRunStatus.ERROR)


class BuildStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    STALE = "stale", "Stale"  # a newer commit was saved; a new build is queued for it


FINISHED = (BuildStatus.PASSED, BuildStatus.FAILED, BuildStatus.ERROR)


class CIBuild(models.Model):
    """The CI build of one commit of a change: its modified models and everything downstream, built into
    `ci_<change>` with unmodified parents read from production, then tested. `nodes` holds a row per
    model and test (status, seconds, rows, production rows, failing-row samples, data diff); `policy`
    the auto-approval verdict on it (each rule, met or not, with its figure)."""

    change = models.ForeignKey("models_service.ChangeRequest", on_delete=models.CASCADE, related_name="ci_builds")
    sha = models.CharField(max_length=40)
    schema = models.CharField(max_length=63)
    status = models.CharField(max_length=10, choices=BuildStatus.choices, default=BuildStatus.QUEUED, db_index=True)
    message = models.TextField(blank=True)
    nodes = models.JSONField(default=list, blank=True)
    modified = models.JSONField(default=list, blank=True)  # the models the change modifies
    downstream = models.JSONField(default=list, blank=True)  # built because they read a modified model
    seconds = models.FloatField(null=True, blank=True)  # build and test time, summed over nodes
    validation = models.JSONField(default=dict, blank=True)  # {"errors": [...], "breaking": [...]}
    policy = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["change", "sha"], name="runner_cibuild_one_per_commit")]

    def __str__(self) -> str:
        return f"CI build {self.pk} of #{self.change_id} at {self.sha[:8]} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class DeployStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DEPLOYED = "deployed", "Deployed"
    FAILED = "failed", "Failed"


class Deployment(models.Model):
    """Building a merged change's models and their downstream into production, each swapped in only
    if it built and its error tests passed. One per (change, merge commit, target): delivering the
    task again changes nothing."""

    change = models.ForeignKey("models_service.ChangeRequest", on_delete=models.CASCADE, related_name="deployments")
    sha = models.CharField(max_length=40)  # the merge commit on main
    target = models.CharField(max_length=63)  # the production schema
    status = models.CharField(max_length=10, choices=DeployStatus.choices, default=DeployStatus.QUEUED,
                              db_index=True)
    message = models.TextField(blank=True)
    nodes = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["change", "sha", "target"], name="runner_deploy_once")]

    def __str__(self) -> str:
        return f"deployment {self.pk} of #{self.change_id} ({self.status})"


class ReviewPolicy(models.Model):
    """The auto-approval policy (one row, edited by platform admins in the API or the Django admin).
    On by default: a change is approved without a person when its CI build passed, every error test
    passed, the build took under `max_build_seconds`, nothing downstream breaks and no validation
    error exists. Each rule can be switched off."""

    enabled = models.BooleanField(default=True)
    max_build_seconds = models.PositiveIntegerField(default=15 * 60)
    require_build_passed = models.BooleanField(default=True)
    require_tests_passed = models.BooleanField(default=True)
    require_fast_build = models.BooleanField(default=True)
    require_no_breaking_change = models.BooleanField(default=True)
    require_no_validation_error = models.BooleanField(default=True)
    merge_on_approval = models.BooleanField(default=True)  # merge and deploy once approved (by anyone)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "review policy"

    def __str__(self) -> str:
        return "auto-approval " + ("on" if self.enabled else "off")

    @classmethod
    def current(cls) -> ReviewPolicy:
        return cls.objects.get_or_create(pk=1)[0]
