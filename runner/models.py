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
    # Its last sign of life (queued, taken, or beaten by its worker while it runs): the reconciler
    # deploys again one whose worker stopped beating (runner.deploy.reconcile).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)

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


# --------------------------------------------------------------------------- scheduled runs (issue 7)


class OnOverlap(models.TextChoices):
    SKIP = "skip", "Skip the slot"
    QUEUE = "queue", "Queue it behind the running one"


class Schedule(models.Model):
    """A production run of a selection of main's models, on a cron (a django-celery-beat task named
    `dmaas-schedule-<id>` fires it) or after another schedule's run succeeds. Each slot runs once:
    runs are keyed by (schedule, slot)."""

    name = models.CharField(max_length=100, unique=True)
    select = models.CharField(max_length=500, blank=True, help_text="dbt selection; empty: every model")
    exclude = models.CharField(max_length=500, blank=True)
    cron = models.CharField(max_length=100, blank=True, help_text="minute hour day month weekday; empty: "
                            "only after another schedule or by hand")
    after = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="followers",
                              help_text="also run each time this schedule's run succeeds")
    enabled = models.BooleanField(default=True)
    on_overlap = models.CharField(max_length=10, choices=OnOverlap.choices, default=OnOverlap.SKIP)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


RUN_FINISHED = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.CANCELLED)


class Run(models.Model):
    """One production run: planned once at main's commit `sha`, its nodes dispatched as tasks as their
    parents finish. At most one runs per target at a time (the conditional unique constraint)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    slot = models.DateTimeField(null=True, blank=True)  # the scheduled time this run is for
    trigger = models.CharField(max_length=10, default="schedule")  # schedule | after | manual | retry
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    message = models.TextField(blank=True)
    target = models.CharField(max_length=63)  # the production schema
    sha = models.CharField(max_length=40, blank=True)
    select = models.CharField(max_length=500, blank=True)
    exclude = models.CharField(max_length=500, blank=True)
    nodes_total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # when its builds were measured and judged (runner.observe.record.judge_run, after the run's end)
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="runner_run_one_per_slot"),
            models.UniqueConstraint(fields=["target"], condition=models.Q(status="running"),
                                    name="runner_run_one_running_per_target"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED


class NodeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for its parents"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Built"
    ERROR = "error", "Error"
    SKIPPED = "skipped", "Skipped"
    PASS = "pass", "Passed"
    WARN = "warn", "Warned"
    FAIL = "fail", "Failed"
    TIMEOUT = "timeout", "Timed out"  # past its time limit: the query was cancelled (RELIABILITY F7)


NODE_FAILED = (NodeStatus.ERROR, NodeStatus.TIMEOUT, NodeStatus.FAIL)  # what fails a run
NODE_DONE = (NodeStatus.SUCCESS, NodeStatus.SKIPPED, NodeStatus.PASS, NodeStatus.WARN, *NODE_FAILED)
NODE_BAD = (*NODE_FAILED, NodeStatus.SKIPPED)


class NodeRun(models.Model):
    """One node (model, seed or test) of a run. A test that needs only its model is run inside the
    model's gated transaction: `gated_by` names that model and the test is never dispatched itself."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="nodes")
    unique_id = models.CharField(max_length=300)
    name = models.CharField(max_length=200)
    resource_type = models.CharField(max_length=10)
    parents = models.JSONField(default=list, blank=True)  # unique_ids in this run
    gated_by = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=NodeStatus.choices, default=NodeStatus.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    rows = models.BigIntegerField(null=True, blank=True)
    failures = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(null=True, blank=True)
    cause = models.CharField(max_length=300, blank=True)  # skipped: the node whose failure skipped this one
    compiled_sql = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "unique_id"], name="runner_noderun_once_per_run")]
        indexes = [models.Index(fields=["name", "status"], name="runner_noderun_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} in run {self.run_id} ({self.status})"


class IncidentCause(models.TextChoices):
    MODEL_FAILED = "model_failed", "A model failed to build"
    TIMEOUT = "timeout", "A model ran past its time limit"
    TEST_FAILED = "test_failed", "A data test failed"
    RUN_LATE = "run_late", "A scheduled run is late"
    RUN_SKIPPED = "run_skipped", "A scheduled run was skipped"
    DEPLOY_FAILED = "deploy_failed", "A deploy failed"
    ANOMALY = "anomaly", "The data looks wrong"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    """Something failed in production: one per subject (a model, or a schedule) and cause while it is
    not resolved; later failures attach to it. Records the facts the 4-working-hour reaction clock
    needs: opened, acknowledged (by whom, when), resolved."""

    subject = models.CharField(max_length=200)  # the model's name, or "schedule:<name>"
    cause = models.CharField(max_length=20, choices=IncidentCause.choices)
    status = models.CharField(max_length=15, choices=IncidentStatus.choices, default=IncidentStatus.OPEN,
                              db_index=True)
    error = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="assigned_incidents")
    failures = models.PositiveIntegerField(default=1)
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents")
    last_run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    acknowledge_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-last_failure_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["subject", "cause"], condition=~models.Q(status="resolved"),
                                               name="runner_incident_one_open_per_subject")]

    def __str__(self) -> str:
        return f"incident {self.pk}: {self.subject} ({self.get_cause_display().lower()})"


class WarehouseSlot(models.Model):
    """Throughput control: a node holds one of the warehouse's DMAAS_WAREHOUSE_CONCURRENCY slots while
    it runs, however many workers there are. A slot whose holder stopped beating is taken back."""

    target = models.CharField(max_length=63)
    number = models.PositiveIntegerField()
    holder = models.ForeignKey(NodeRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "number"], name="runner_slot_unique")]

    def __str__(self) -> str:
        return f"slot {self.number} of {self.target}"


# --------------------------------------------------------------------------- the service agreement (issue 8)


class ClosingDay(models.Model):
    """A day the company is closed beyond public holidays (platform admins add them): no working time."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class SlaSettings(models.Model):
    """The allowances and targets of the service agreement (one row, platform admins edit it)."""

    review_days = models.FloatField(default=3.0)  # working days from submission to the first decision
    incident_hours = models.FloatField(default=4.0)  # working hours from opening to acknowledgement
    run_tolerance_minutes = models.PositiveIntegerField(default=5)  # a slot starts within this of its time
    freshness_tolerance_minutes = models.PositiveIntegerField(default=15)  # beyond the schedule's period
    at_risk = models.FloatField(default=0.75)  # share of the allowance used that makes an item "at risk"
    review_target = models.FloatField(default=95.0)  # % met on time
    incident_target = models.FloatField(default=95.0)
    run_target = models.FloatField(default=99.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "SLA settings"

    def __str__(self) -> str:
        return "service agreement settings"

    @classmethod
    def current(cls) -> SlaSettings:
        return cls.objects.get_or_create(pk=1)[0]


class SlaAlert(models.Model):
    """One alert sent: an item's transition to at risk or breached, sent once (the unique key)."""

    kind = models.CharField(max_length=20)  # review | incident | run
    item = models.CharField(max_length=100)  # the change, incident or run slot it is about
    state = models.CharField(max_length=20)  # at_risk | breached
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "item", "state"], name="runner_slaalert_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.item} {self.state}"


# --------------------------------------------------------------------------- watching the data (issue 9)


class MeasureKind(models.TextChoices):
    PRODUCTION = "production", "Production run"
    DEPLOY = "deploy", "Deploy"
    CI = "ci", "CI build"
    DEV = "dev", "Test my model"


class Measurement(models.Model):
    """What one build of one model measured: rows, seconds, bytes, and per column statistics.

    `columns` is a list of {"name", "type", "nulls", "null_fraction", "distinct", "min", "max", "mean",
    "stddev", "top": [[value, count], ...]} (keys a statistic does not apply to are absent). Anomaly
    detection compares production measurements of a model with its own history."""

    model = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=12, choices=MeasureKind.choices, default=MeasureKind.PRODUCTION)
    schema = models.CharField(max_length=63)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="measurements")
    node_run = models.ForeignKey(NodeRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ci_build = models.ForeignKey(CIBuild, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    test_run = models.ForeignKey(TestRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    measured_at = models.DateTimeField(db_index=True)
    rows = models.BigIntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)  # build seconds
    bytes = models.BigIntegerField(null=True, blank=True)  # where the warehouse reports it
    measure_seconds = models.FloatField(null=True, blank=True)  # what measuring itself cost
    columns = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)  # why measuring failed (the build stood; rows and seconds still kept)
    # noted from a production run's node (rows and seconds of the build), its statistics and judging
    # still to come: runner.observe.record.judge_run notes, measures and judges a run's builds after it
    pending = models.BooleanField(default=False)

    class Meta:
        ordering = ["-measured_at", "-id"]
        indexes = [models.Index(fields=["model", "kind", "-measured_at"], name="runner_measure_series"),
                   models.Index(fields=["run"], condition=models.Q(pending=True), name="runner_measure_pending")]

    def __str__(self) -> str:
        return f"{self.model} {self.kind} at {self.measured_at:%Y-%m-%d %H:%M}"


# A production run's measurement has its statistics once its run has been judged (runner.observe.record:
# the node notes the build, judge_run measures and judges after the run): what readers show.
MEASURE_COMPLETE = models.Q(pending=False)


class SchemaChangeKind(models.TextChoices):
    ADDED = "added", "Column added"
    REMOVED = "removed", "Column removed"
    TYPE_CHANGED = "type_changed", "Type changed"


class SchemaChange(models.Model):
    """A column of a production model that appeared, disappeared or changed type between two builds."""

    model = models.CharField(max_length=200, db_index=True)
    column = models.CharField(max_length=200)
    kind = models.CharField(max_length=15, choices=SchemaChangeKind.choices)
    old_type = models.CharField(max_length=100, blank=True)
    new_type = models.CharField(max_length=100, blank=True)
    measurement = models.ForeignKey(Measurement, on_delete=models.CASCADE, related_name="schema_changes")
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detected_at = models.DateTimeField()

    class Meta:
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model}.{self.column} {self.kind}"


class AnomalySeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    INCIDENT = "incident", "Incident"


class Anomaly(models.Model):
    """A measured value far from what the model's history expects at that hour and weekday."""

    model = models.CharField(max_length=200, db_index=True)
    metric = models.CharField(max_length=50)  # row_count, build_seconds, null_fraction, distinct, mean, ...
    column = models.CharField(max_length=200, blank=True)  # empty for model-level metrics
    value = models.FloatField()
    expected = models.FloatField()
    low = models.FloatField()
    high = models.FloatField()
    score = models.FloatField()  # robust z: (value - median) / (1.4826 * MAD)
    severity = models.CharField(max_length=10, choices=AnomalySeverity.choices, default=AnomalySeverity.WARNING)
    measurement = models.ForeignKey(Measurement, on_delete=models.CASCADE, related_name="anomalies")
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="anomalies")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="anomalies")
    detected_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name_plural = "anomalies"

    def __str__(self) -> str:
        where = f"{self.model}.{self.column}" if self.column else self.model
        return f"{where} {self.metric}={self.value:g} (expected {self.expected:g})"


class AnomalySettings(models.Model):
    """Per-model sensitivity (platform admins tune it). `model` "" holds the defaults for every model."""

    model = models.CharField(max_length=200, unique=True, blank=True)
    enabled = models.BooleanField(default=True)
    warn_score = models.FloatField(default=4.0)  # robust z above which a warning is recorded on the run
    incident_score = models.FloatField(default=8.0)  # ... and above which an incident opens
    min_history = models.PositiveIntegerField(default=8)  # measurements needed before judging
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "anomaly settings"

    def __str__(self) -> str:
        return f"anomaly settings of {self.model or 'every model'}"


class PiiStatus(models.TextChoices):
    SUGGESTED = "suggested", "Suggested"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"


class PiiTag(models.Model):
    """A column that holds (or may hold) personal data: found by its name or by values in a sample; a
    legal role confirms or rejects it. Confirmed columns are masked for people without `pii.view`."""

    model = models.CharField(max_length=200, db_index=True)
    column = models.CharField(max_length=200)
    category = models.CharField(max_length=30)  # email, phone, name, address, iban, ssn, birth, card, ip, ...
    confidence = models.FloatField()  # 0..1
    evidence = models.JSONField(default=dict, blank=True)  # {"name": "...", "values": {"matched": n, "sampled": m}}
    status = models.CharField(max_length=10, choices=PiiStatus.choices, default=PiiStatus.SUGGESTED, db_index=True)
    detected_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["model", "column"]
        constraints = [models.UniqueConstraint(fields=["model", "column"], name="runner_piitag_unique")]

    def __str__(self) -> str:
        return f"{self.model}.{self.column}: {self.category} ({self.status})"


class ChartKind(models.TextChoices):
    BAR = "bar", "Bar"
    LINE = "line", "Line"
    AREA = "area", "Area"
    SCATTER = "scatter", "Scatter"


class ChartBucket(models.TextChoices):
    """The time bucket of a chart's date or timestamp x axis: one point per day, week, month or year."""

    NONE = "", "none"
    DAY = "day", "day"
    WEEK = "week", "week"  # from Monday (ISO), on DuckDB and PostgreSQL alike
    MONTH = "month", "month"
    YEAR = "year", "year"


class Chart(models.Model):
    """A chart of one model saved by someone; anyone who may see the catalog opens it by its link."""

    model = models.CharField(max_length=200, db_index=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ChartKind.choices, default=ChartKind.BAR)
    x = models.CharField(max_length=200)
    bucket = models.CharField(max_length=10, choices=ChartBucket.choices, default=ChartBucket.NONE, blank=True)
    y = models.CharField(max_length=200, blank=True)  # empty with aggregate "count"
    group_by = models.CharField(max_length=200, blank=True)
    aggregate = models.CharField(max_length=10, default="sum")  # none, count, sum, avg, min, max
    filters = models.JSONField(default=list, blank=True)  # [{"column", "op", "value"}]
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="charts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.model})"


class OutboxTask(models.Model):
    """A task to send after the transaction that asked for it (RELIABILITY.md F4): written in that
    transaction, deleted once the broker took the message; one whose send failed (the broker was down)
    is sent again by the reconciler (runner.jobs.resend_unsent). For tasks with no job row of their
    own to wait in (merging an approved change, dropping a CI schema, starting a run that waited)."""

    task = models.CharField(max_length=100)
    arg = models.BigIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["task", "arg"], name="runner_outbox_once")]

    def __str__(self) -> str:
        return f"{self.task}({self.arg})"
