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
