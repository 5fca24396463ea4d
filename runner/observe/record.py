"""Measurements of builds, kept: saved, judged against the model's history, reported.

Every build measures the relations it made (production runs, deploys, CI builds, "Test my model"):

1. `take(adapter, manifest, results)` — inside the build's warehouse lease, right after the engine
   ran: measures each model or seed that built (runner.observe.stats). Never raises: a measuring
   error is logged and kept on the measurement (`error`), the build stays what it was.
2. `save_all(taken, kind, **links)` — after the build's own rows are saved: one Measurement each.
   For the production relation (production runs and deploys) the columns are compared with the
   previous measurement (SchemaChange rows). For production runs the series are judged
   (runner.observe.anomalies) with the model's AnomalySettings: an Anomaly per metric out of its
   band, a warning; one whose score passes `incident_score` also opens (or adds to) the model's
   "anomaly" incident, with the same one-open-per-subject-and-cause rule as every incident. A later
   production measurement with no anomaly resolves that incident with a note. Then `measured` is sent
   (the PII scanner listens). Never raises either.

Production runs dispatch one node per task (runner/nodes.py) and work differently: a node does
nothing for the data watch (its NodeRun row keeps the build's rows and seconds anyway), and once the
run has ended `judge_run`, a task of its own (runner.tasks.judge_run, queued through the outbox as
the run closes), notes the run's builds (`note_run`: a pending Measurement each), measures their
relations in one warehouse lease, saves the statistics, compares schemas, judges each against its
history and tells the PII scanner. Done in each node, between the node and its children, the measuring query, the history
read and the judging made a measured hourly run 1.4 to 1.9 times as long as a plain one
(bench/observe.py), because they held the children back and, on the embedded DuckDB, the one
warehouse file; a finding about the data changes nothing the run still builds. The relations are
measured as the run left them: the run holds its target until it ends, and a deploy that replaced
one since is measured as what it is. A noted measurement is `pending` until judged, and the run's
`judged_at` is set at the end; the reconciler queues an ended run never judged (a cancelled run,
a lost worker).

`latest(model)` and `series(model, limit)` are what the catalog shows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Subquery
from django.db.models.functions import ExtractHour
from django.utils import timezone

from runner import incidents
from runner.models import (
    MEASURE_COMPLETE,
    Anomaly,
    AnomalySettings,
    AnomalySeverity,
    IncidentCause,
    MeasureKind,
    Measurement,
    SchemaChange,
)

from . import anomalies as detector
from . import stats
from .signals import measured

log = logging.getLogger(__name__)
K = MeasureKind
PRODUCTION_KINDS = (K.PRODUCTION, K.DEPLOY)  # both measure the production relation
BUILT = ("model", "seed")


@dataclass
class Taken:
    """A measurement taken during a build, not saved yet."""

    model: str
    schema: str
    unique_id: str
    measured_at: dt.datetime
    rows: int | None = None
    seconds: float | None = None
    bytes: int | None = None
    measure_seconds: float | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    # the model's last production measurement as it was when this one was taken (one query serves the
    # top-value hint and the schema comparison): its columns, or None when there was none
    before: list[dict[str, Any]] | None = None


def zone() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.TIME_ZONE)


# --------------------------------------------------------------------------- taking


def take(adapter: Any, manifest: Any, results: Iterable[Any]) -> list[Taken]:
    """Measure each model or seed of `results` that built. Never raises."""
    out = []
    for result in results:
        try:
            taken = _take_one(adapter, manifest, result)
        except Exception:  # noqa: BLE001 - measuring is information: it never fails a build
            log.exception("could not measure %s", getattr(result, "name", result))
            continue
        if taken is not None:
            out.append(taken)
    return out


def _take_one(adapter: Any, manifest: Any, result: Any) -> Taken | None:
    if result.status != "success":
        return None
    node = measurable(manifest, result.unique_id)
    if node is None:
        return None
    relation = manifest.relations[result.unique_id]
    taken = Taken(model=result.name, schema=relation[0], unique_id=result.unique_id, measured_at=timezone.now(),
                  rows=result.rows, seconds=result.seconds, before=last_columns(result.name))
    _measure_into(taken, adapter, relation, node, _exact_rows(node, result.rows))
    return taken


def measurable(manifest: Any, uid: str) -> Any:
    """The manifest's node `uid` when a build of it leaves a relation to measure (a model or seed, not
    ephemeral), else None."""
    node = manifest.nodes.get(uid)
    if node is None or node.resource_type not in BUILT or node.materialized == "ephemeral":
        return None
    return node if uid in manifest.relations else None


def _exact_rows(node: Any, rows: int | None) -> int | None:
    """The build's row count when it is the relation's (a full build); an incremental one counts what
    it added, and a view counts nothing."""
    return rows if node.materialized in ("table", "seed") or node.resource_type == "seed" else None


def _measure_into(taken: Taken, adapter: Any, relation: tuple[str, str], node: Any, exact: int | None) -> None:
    """Measure the node's relation (schema, name) into `taken`; a query the warehouse refuses is kept
    as its error."""
    schema, name = relation
    try:
        measured = stats.measure(adapter, schema, name, kind="view" if node.materialized == "view" else "table",
                                 rows=exact, top_hint=_hint(taken.before))
    except Exception as err:  # noqa: BLE001 - the warehouse refused the query: kept on the measurement
        log.warning("measuring %s.%s failed", schema, name, exc_info=True)
        taken.error = f"Measuring failed: {err}"[:5000]
        return
    taken.rows, taken.bytes, taken.columns = measured.rows, measured.bytes, measured.columns
    taken.measure_seconds = measured.seconds


def last_columns(model: str) -> list[dict[str, Any]] | None:
    """The columns of the model's last complete production measurement that worked (None: there is
    none); a run's measurements still pending have no statistics yet."""
    found = (Measurement.objects.filter(MEASURE_COMPLETE, model=model, kind__in=PRODUCTION_KINDS, error="")
             .order_by("-measured_at", "-id").values_list("columns", flat=True).first())
    return None if found is None else [c for c in found if isinstance(c, dict)]


def _hint(columns: list[dict[str, Any]] | None) -> set[str]:
    """The columns whose top values the last measurement had: measured again in the same query
    (runner.observe.stats)."""
    return {c["name"] for c in columns or [] if "top" in c and c.get("name")}


def note_run(run: Any, manifest: Any) -> list[Measurement]:
    """Note what the ended production run built, from its nodes' own records: one pending Measurement
    per model or seed that built, with the build's row count (exact for a table or seed), seconds and
    end; `judge_run` measures and judges them. So a node writes nothing for the data watch while the
    run goes on. Once per node, even with two judging tasks (the run's row is locked while noting)."""
    from runner.models import NodeRun, NodeStatus, Run

    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=run.pk).first()
        noted = set(Measurement.objects.filter(run=run, kind=K.PRODUCTION, node_run__isnull=False)
                    .values_list("node_run_id", flat=True))
        new = []
        for node in NodeRun.objects.filter(run=run, status=NodeStatus.SUCCESS, resource_type__in=BUILT).only(
                "pk", "unique_id", "name", "rows", "seconds", "finished_at"):
            built = measurable(manifest, node.unique_id)
            if node.pk in noted or built is None:
                continue
            new.append(Measurement(model=node.name, kind=K.PRODUCTION, schema=manifest.relations[node.unique_id][0],
                                   measured_at=node.finished_at or timezone.now(), rows=_exact_rows(built, node.rows),
                                   seconds=node.seconds, run=run, node_run=node, pending=True))
        return Measurement.objects.bulk_create(new)


# --------------------------------------------------------------------------- keeping and judging


def save_all(taken: Sequence[Taken], kind: str, **links: Any) -> list[Measurement]:
    """One Measurement per taken one (links: run, node_run, ci_build, test_run, deployment); judged
    and reported as the module docstring says. Never raises."""
    saved = []
    for one in taken:
        try:
            with transaction.atomic():
                measurement = save(one, kind, **links)
        except Exception:  # noqa: BLE001 - keeping a measurement never fails the build it measured
            log.exception("could not keep the measurement of %s", one.model)
            continue
        saved.append(measurement)
        if kind == K.PRODUCTION:
            _tell(measurement)
    return saved


def save(taken: Taken, kind: str, **links: Any) -> Measurement:
    measurement = Measurement.objects.create(
        model=taken.model, kind=kind, schema=taken.schema, measured_at=taken.measured_at, rows=taken.rows,
        seconds=taken.seconds, bytes=taken.bytes, measure_seconds=taken.measure_seconds, columns=taken.columns,
        error=taken.error, **links)
    if kind in PRODUCTION_KINDS and not taken.error:
        record_schema_changes(measurement, taken.before)
    if kind == K.PRODUCTION:
        judge(measurement)
    return measurement


def judge_run(run_id: int) -> int:
    """Measure the ended run's relations whose measurements are not judged yet (`measure_noted`), then
    save, compare and judge each in its own transaction and tell the receivers of `measured` (PII
    scans); the count judged. Idempotent: a measurement is taken by marking it judged, so a
    redelivered task or a second sender judges nothing twice. Never raises for one measurement: a
    failure is logged and the others are judged."""
    from runner.models import Run
    from runner.nodes import manifest_or_none

    run = Run.objects.filter(pk=run_id).first()
    if run is None or run.finished_at is None:
        return 0  # gone, or not ended: its end queues it again
    done = 0
    manifest = manifest_or_none(run)
    if getattr(settings, "DMAAS_MEASURE_BUILDS", True) and manifest is not None:
        note_run(run, manifest)
    pending = list(Measurement.objects.filter(run_id=run_id, kind=K.PRODUCTION, pending=True)
                   .select_related("run").order_by("measured_at", "id"))
    taken = measure_noted(pending, manifest)
    for noted in pending:
        pk = noted.pk
        try:
            with transaction.atomic():
                if not Measurement.objects.filter(pk=pk, pending=True).update(pending=False):
                    continue  # judged by another task meanwhile
                measurement = _keep_taken(noted, taken.get(pk))
                judge(measurement)
        except Exception:  # noqa: BLE001 - one model's history must not keep the run's others unjudged
            log.exception("could not judge measurement %s of run %s", pk, run_id)
            Measurement.objects.filter(pk=pk, pending=True).update(pending=False)
            continue
        done += 1
        _tell(measurement)
    Run.objects.filter(pk=run_id, judged_at__isnull=True).update(judged_at=timezone.now())
    return done


def measure_noted(noted: Sequence[Measurement], manifest: Any) -> dict[int, Taken]:
    """What `note_run` noted of one run, measured in ONE warehouse lease (the relations as the run
    left them; `manifest`: the run's): {measurement id: Taken}. The previous columns of each model are
    read before the lease, so the warehouse (on DuckDB, its one file) is held for the queries alone.
    Never raises: a relation the warehouse refuses gets its error; a warehouse that cannot be
    reached, an error on each."""
    from runner import warehouse as wh

    built = {}
    for uid in (manifest.nodes if manifest is not None else ()):
        node = measurable(manifest, uid)
        if node is not None:
            built[node.name] = (uid, node)
    out: dict[int, Taken] = {}
    for m in noted:
        uid, _ = built.get(m.model, ("", None))
        out[m.pk] = Taken(model=m.model, schema=m.schema, unique_id=uid, measured_at=m.measured_at,
                          rows=m.rows, seconds=m.seconds, before=last_columns(m.model))
        if not uid:
            out[m.pk].error = "Measuring failed: the model is not in its run's project any more."
    todo = [m for m in noted if not out[m.pk].error]
    if not todo:
        return out
    try:
        with wh.get_warehouse().build() as adapter:
            for m in todo:
                uid, node = built[m.model]
                _measure_into(out[m.pk], adapter, manifest.relations[uid], node, m.rows)
    except Exception as err:  # noqa: BLE001 - the warehouse could not be reached: said on each
        log.warning("could not measure run %s's relations", noted[0].run_id, exc_info=True)
        for m in todo:
            if out[m.pk].measure_seconds is None and not out[m.pk].error:
                out[m.pk].error = f"Measuring failed: {err}"[:5000]
    return out


def _keep_taken(measurement: Measurement, taken: Taken | None) -> Measurement:
    """A noted measurement completed with what `measure_noted` took, and its schema compared."""
    if taken is None:
        return measurement
    measurement.rows, measurement.bytes, measurement.columns = taken.rows, taken.bytes, taken.columns
    measurement.measure_seconds, measurement.error = taken.measure_seconds, taken.error
    measurement.save(update_fields=["rows", "bytes", "columns", "measure_seconds", "error"])
    if not taken.error:
        record_schema_changes(measurement, taken.before)
    return measurement


def unjudged_runs(before: dt.datetime, limit: int = 20) -> list[int]:
    """Runs that ended before `before` (and within a day of it) and were never judged: for the
    reconciler (a cancelled run, a judging task lost with its worker). None while measuring is off."""
    from runner.models import Run

    if not getattr(settings, "DMAAS_MEASURE_BUILDS", True):
        return []
    return list(Run.objects.filter(judged_at__isnull=True, finished_at__lt=before,
                                   finished_at__gte=before - dt.timedelta(days=1))
                .order_by("finished_at").values_list("pk", flat=True)[:limit])


def _tell(measurement: Measurement) -> None:
    for receiver, answer in measured.send_robust(sender=Measurement, measurement=measurement):
        if isinstance(answer, Exception):
            log.error("a receiver of `measured` failed (%s): %s", receiver, answer, exc_info=answer)


def previous(measurement: Measurement) -> Measurement | None:
    """The model's production measurement before this one (with columns: measuring worked)."""
    return (Measurement.objects.filter(model=measurement.model, kind__in=PRODUCTION_KINDS, error="",
                                       measured_at__lte=measurement.measured_at)
            .exclude(pk=measurement.pk).order_by("-measured_at", "-id").first())


def record_schema_changes(measurement: Measurement, before: list[dict[str, Any]] | None = None
                          ) -> list[SchemaChange]:
    """Columns added, removed or retyped since the previous production measurement (`before`: its
    columns when the caller has them already)."""
    if before is None:
        last = previous(measurement)
        before = last.columns if last is not None else None
    if not before or not measurement.columns:
        return []
    changes = [SchemaChange(model=measurement.model, measurement=measurement, run=measurement.run,
                            detected_at=measurement.measured_at, **change)
               for change in detector.schema_changes(before, measurement.columns)]
    return SchemaChange.objects.bulk_create(changes)


def settings_for(model: str, run_id: int | None = None) -> AnomalySettings:
    """The model's own settings, else the defaults row (model ""), else the built-in defaults. With
    `run_id`, every row is read once per run and process (a run judges each of its models; a change
    of settings applies from the next run)."""
    if run_id is not None:
        cached = _SETTINGS.get(run_id)
        if cached is None:
            cached = {s.model: s for s in AnomalySettings.objects.all()}
            _SETTINGS.clear()
            _SETTINGS[run_id] = cached
        rows = cached
    else:
        rows = {s.model: s for s in AnomalySettings.objects.filter(model__in=[model, ""])}
    return rows.get(model) or rows.get("") or AnomalySettings(model="")


_SETTINGS: dict[int, dict[str, AnomalySettings]] = {}  # the settings of the last run judged here


def history_of(measurement: Measurement) -> list[tuple[int, dt.datetime, int | None, float | None, list]]:
    """What the detector needs of the model's past production measurements, in one query: the newest
    RECENT, and those at the same local hour over the last SEASON_WEEKS weeks."""
    at = measurement.measured_at
    base = Measurement.objects.filter(MEASURE_COMPLETE, model=measurement.model, kind__in=PRODUCTION_KINDS,
                                      error="", measured_at__lt=at)
    fields = ("id", "measured_at", "rows", "seconds", "columns")
    recent = base.order_by("-measured_at").values("id")[:detector.RECENT]
    hour = at.astimezone(zone()).hour
    seasonal = Q(measured_at__gte=at - dt.timedelta(weeks=detector.SEASON_WEEKS), local_hour=hour)
    return list(base.annotate(local_hour=ExtractHour("measured_at", tzinfo=zone()))
                .filter(Q(id__in=Subquery(recent)) | seasonal).values_list(*fields))


def judge(measurement: Measurement) -> list[Anomaly]:
    """Compare the production measurement with its history; keep the anomalies, open or resolve the
    model's anomaly incident."""
    conf = settings_for(measurement.model, measurement.run_id)
    if not conf.enabled:
        return []
    history = history_of(measurement)
    flagged = set(Anomaly.objects.filter(measurement_id__in=[h[0] for h in history])
                  .values_list("measurement_id", "metric", "column"))
    series: dict[tuple[str, str], list[detector.Point]] = {}
    for pk, at, rows, seconds, columns in history:
        for key, value in detector.metrics_of(rows, seconds, columns or []).items():
            series.setdefault(key, []).append(detector.Point(at, value, (pk, *key) in flagged))
    found: list[Anomaly] = []
    judged = False
    for (metric, column), value in detector.metrics_of(measurement.rows, measurement.seconds,
                                                       measurement.columns).items():
        verdict = detector.judge(metric, value, measurement.measured_at, series.get((metric, column), []),
                                 zone=zone(), warn_score=conf.warn_score, min_history=conf.min_history)
        if verdict is None:
            continue
        judged = True
        if verdict.anomalous:
            severe = abs(verdict.score) >= conf.incident_score
            found.append(Anomaly(model=measurement.model, metric=metric, column=column, value=value,
                                 expected=verdict.expected, low=verdict.low, high=verdict.high,
                                 score=verdict.score, measurement=measurement, run=measurement.run,
                                 detected_at=measurement.measured_at,
                                 severity=AnomalySeverity.INCIDENT if severe else AnomalySeverity.WARNING))
    if found:
        _report(measurement, found)
        Anomaly.objects.bulk_create(found)
    elif judged:
        incidents.resolve_cause(measurement.model, IncidentCause.ANOMALY,
                                f"Resolved by {_where(measurement)}: every measured statistic of "
                                f"{measurement.model} is within its expected range again "
                                f"({measurement.rows} rows).")
    return found


def _where(measurement: Measurement) -> str:
    return f"run {measurement.run_id}" if measurement.run_id else f"measurement {measurement.pk}"


def describe(anomaly: Anomaly) -> str:
    """One line for people: what, how much, against what."""
    what = f"{anomaly.metric} of {anomaly.column}" if anomaly.column else anomaly.metric.replace("_", " ")
    return (f"{what} is {anomaly.value:,.4g}, expected about {anomaly.expected:,.4g} "
            f"(normal {anomaly.low:,.4g} to {anomaly.high:,.4g}; score {anomaly.score:+.1f})")


def _report(measurement: Measurement, found: list[Anomaly]) -> None:
    severe = [a for a in found if a.severity == AnomalySeverity.INCIDENT]
    if not severe:
        return
    worst = sorted(severe, key=lambda a: -abs(a.score))
    lines = [f"{measurement.model}: the data look wrong after {_where(measurement)}."]
    lines += [f"- {describe(a)}" for a in worst[:10]]
    if len(worst) > 10:
        lines.append(f"- and {len(worst) - 10} more")
    incident = incidents.report(measurement.model, IncidentCause.ANOMALY, "\n".join(lines), run=measurement.run,
                                hooks=_hooks(measurement))
    for anomaly in severe:
        anomaly.incident = incident


def _hooks(measurement: Measurement) -> dict[str, list[str]]:
    if measurement.run_id is None:
        return {}
    from runner import runs

    return incidents.hooks_of(runs.manifest_or_none(measurement.run), measurement.model)


# --------------------------------------------------------------------------- reading


def latest(model: str) -> Measurement | None:
    """The model's newest production measurement (from a run or a deploy), columns included."""
    return (Measurement.objects.filter(MEASURE_COMPLETE, model=model, kind__in=PRODUCTION_KINDS)
            .order_by("-measured_at", "-id").first())


def series(model: str, limit: int = 100, *, columns: bool = False) -> list[Measurement]:
    """The model's last `limit` production measurements, oldest first (for row-count and build-time
    charts). Without `columns` the per-column statistics are not loaded (use `latest` for those)."""
    rows = Measurement.objects.filter(MEASURE_COMPLETE, model=model, kind__in=PRODUCTION_KINDS).order_by("-measured_at", "-id")
    if not columns:
        rows = rows.defer("columns")
    return list(reversed(rows[:max(1, int(limit))]))
