"""Chart data of a model, its row count and build time over time, and saved charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied

from models_service import access, audit
from models_service.errors import NotFound
from runner import warehouse as wh
from runner.models import (
    MEASURE_COMPLETE,
    Chart,
    ChartBucket,
    ChartKind,
    MeasureKind,
    Measurement,
    NodeRun,
    NodeStatus,
)

from .query import (
    AGGREGATES,
    MAX_FILTERS,
    MAX_GROUPS,
    MAX_HISTORY,
    MAX_POINTS,
    MAX_RAW_POINTS,
    ExploreError,
    Relation,
    _ident,
    _int,
    _main_node,
    _masked,
    _require_pii,
    _run,
    _where_sql,
    relation_of,
    where_of,
)

# --------------------------------------------------------------------------- chart data


@dataclass
class ChartSpec:
    kind: str
    x: str
    y: str
    group_by: str
    aggregate: str
    filters: list[dict[str, Any]]
    bucket: str = ""  # a date x axis per day, week, month or year ("": one point per value)


BUCKETS = tuple(b for b in ChartBucket.values if b)


def chart_spec(data: dict[str, Any]) -> ChartSpec:
    """The chart's definition, its shape checked (its columns are checked against the relation later)."""
    kind = data.get("kind") or ChartKind.BAR
    if kind not in ChartKind.values:
        raise ExploreError(f"kind is one of {', '.join(ChartKind.values)}.", field="kind")
    aggregate = data.get("aggregate") or ("none" if kind == ChartKind.SCATTER else "count")
    if aggregate not in AGGREGATES:
        raise ExploreError(f"aggregate is one of {', '.join(AGGREGATES)}.", field="aggregate")
    fields = {}
    for key in ("x", "y", "group_by"):
        value = data.get(key) or ""
        if not isinstance(value, str) or len(value) > 200:
            raise ExploreError(f"{key} names a column.", field=key)
        fields[key] = value
    if not fields["x"]:
        raise ExploreError("Choose the column for the x axis.", field="x")
    if aggregate != "count" and not fields["y"]:
        raise ExploreError(f"Choose the column for the y axis (or count the rows): {aggregate} needs one.",
                           field="y")
    if aggregate == "none" and fields["group_by"] and kind != ChartKind.SCATTER:
        raise ExploreError("Grouping a chart needs an aggregate (count, sum, avg, min or max), or a scatter chart.",
                           field="group_by")
    filters = data.get("filters") or []
    if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
        raise ExploreError(f"filters is a list of at most {MAX_FILTERS} {{column, op, value}}.", field="filters")
    bucket = data.get("bucket") or ""
    if bucket not in ChartBucket.values:
        raise ExploreError(f"bucket is one of {', '.join(BUCKETS)} (or empty: one point per value).", field="bucket")
    if bucket and kind == ChartKind.SCATTER:
        raise ExploreError("A scatter chart has numbers on the x axis: it cannot be bucketed by time.", field="bucket")
    if bucket and aggregate == "none":
        raise ExploreError(f"Bucketing the x axis per {bucket} needs an aggregate (count, sum, avg, min or max).",
                           field="bucket")
    return ChartSpec(kind, fields["x"], fields["y"] if aggregate != "count" else "", fields["group_by"],
                     aggregate, filters, bucket)


def _chart_sql(rel: Relation, spec: ChartSpec, user: Any) -> tuple[str, int, list[dict[str, Any]]]:
    """The one query of a chart, the rows it may answer, and the filters as understood."""
    x = rel.column(spec.x, "x")
    d = rel.dialect
    if spec.kind == ChartKind.SCATTER and x["kind"] != "number":
        raise ExploreError(f"A scatter chart needs numbers on the x axis: {x['name']} holds {x['kind']} values.",
                           field="x")
    for name, role in ((spec.x, "chart"), (spec.group_by, "group a chart by")):
        if name:
            _require_pii(user, rel, name, role)
    y_sql = "cast(null as double precision)"
    if spec.y:
        y = rel.column(spec.y, "y")
        if y["kind"] != "number":
            raise ExploreError(f"The y axis needs numbers: {y['name']} holds {y['kind']} values; count the rows "
                               "instead.", field="y")
        if spec.aggregate in ("none", "min", "max"):  # these show the column's own values
            _require_pii(user, rel, spec.y, "chart")
        y_sql = f"cast({_ident(y['name']).sql(d)} as double precision)"
    x_sql = _ident(x["name"]).sql(d)
    if spec.bucket:
        if x["kind"] not in ("date", "timestamp"):
            raise ExploreError(f"Only a date or timestamp x axis is bucketed per {spec.bucket}: {x['name']} holds "
                               f"{x['kind']} values.", field="bucket")
        # The bucket comes from ChartBucket, never the caller's text; its first day, as a date (ISO label).
        x_sql = f"cast(date_trunc('{spec.bucket}', {x_sql}) as date)"
    elif x["kind"] == "other":
        x_sql = f"cast({x_sql} as text)"
    elif spec.kind == ChartKind.SCATTER:
        x_sql = f"cast({x_sql} as double precision)"
    g_sql = "cast(null as text)"
    if spec.group_by:
        g_sql = f"cast({_ident(rel.column(spec.group_by, 'group_by')['name']).sql(d)} as text)"
    condition, clean = where_of(rel, spec.filters, user)
    base = f"base as (select {x_sql} as x, {g_sql} as g, {y_sql} as y from {rel.sql()}{_where_sql(rel, condition)})"
    tagged = ("top as (select g, row_number() over (order by count(*) desc, g nulls last) as rk from base group by g),\n"
              f"tagged as (select b.x, b.y, case when coalesce(t.rk, n.rk) <= {MAX_GROUPS} then coalesce(t.rk, n.rk) "
              f"else {MAX_GROUPS + 1} end as rk, case when coalesce(t.rk, n.rk) <= {MAX_GROUPS} then b.g end as grp "
              "from base b left join top t on b.g = t.g left join (select rk from top where g is null) n on b.g is null)")
    if spec.aggregate == "none":
        sql = (f"with {base},\n{tagged}\nselect x, rk, grp, y as v from tagged where x is not null and y is not null "
               f"order by rk, x limit {MAX_RAW_POINTS + 1}")
        return sql, MAX_RAW_POINTS, clean
    value = "count(*)" if spec.aggregate == "count" else f"cast({spec.aggregate}(y) as double precision)"
    sql = (f"with {base},\n{tagged},\n"
           f"agg as (select x, rk, grp, {value} as v from tagged group by x, rk, grp),\n"
           "ranked as (select x, rk, grp, v, dense_rank() over (order by x nulls last) as xr from agg)\n"
           f"select x, rk, grp, v, xr from ranked where xr <= {MAX_POINTS + 1} order by xr, rk")
    return sql, (MAX_POINTS + 1) * (MAX_GROUPS + 1), clean


def validate_chart(user: Any, name: str, spec: ChartSpec) -> None:
    _chart_sql(relation_of(user, name), spec, user)


def chart_data(user: Any, name: str, data: dict[str, Any] | ChartSpec, *, source: str = "api") -> dict[str, Any]:
    """What a chart draws: `labels` (the x values, in order; with a bucket, the first day of each) and one series per group (at most 12, the rest
    as "Other"), each with `values` aligned to the labels (null where a group has no row) and `points`
    ([x, y] pairs). Without an aggregate (scatter), the rows themselves, at most 5,000."""
    spec = data if isinstance(data, ChartSpec) else chart_spec(data)
    rel = relation_of(user, name)
    sql, limit, clean = _chart_sql(rel, spec, user)
    result = _run(sql, limit)
    # Named after the model's columns where they carry its values ("" where they do not), for the PII gate.
    names = [spec.x, spec.group_by, "", spec.y if spec.aggregate in ("none", "min", "max") else ""]
    rows_ = [[r[0], r[2], r[1], r[3]] for r in result.rows]
    masked = _masked(user, rel, names, rows_, "chart", source, result.elapsed_ms)
    truncated = result.truncated
    if spec.aggregate != "none":
        truncated = truncated or any(r[4] > MAX_POINTS for r in result.rows)
        keep = [m for m, r in zip(masked.rows, result.rows, strict=True) if r[4] <= MAX_POINTS]
        xr = [r[4] for r in result.rows if r[4] <= MAX_POINTS]
    else:
        keep, xr = masked.rows, []
    series: dict[int, dict[str, Any]] = {}
    labels: list[Any] = []
    position: dict[int, int] = {}
    for i, (x, grp, rk, v) in enumerate(keep):
        s = series.setdefault(int(rk), {"name": "Other" if rk > MAX_GROUPS else _group_label(grp, spec),
                                        "other": rk > MAX_GROUPS, "values": {}, "points": []})
        s["points"].append([x, v])
        if spec.aggregate != "none":
            if xr[i] not in position:
                position[xr[i]] = len(labels)
                labels.append(x)
            s["values"][position[xr[i]]] = v
    if spec.aggregate == "none" and not spec.group_by:
        labels = [p[0] for p in series.get(1, {"points": []})["points"]]
    out = []
    for _rk, s in sorted(series.items()):
        values = s.pop("values")
        s["values"] = ([values.get(i) for i in range(len(labels))] if spec.aggregate != "none"
                       else [p[1] for p in s["points"]] if not spec.group_by else [])
        out.append(s)
    return {"model": rel.model, "kind": spec.kind, "x": spec.x, "bucket": spec.bucket or None, "y": spec.y or None,
            "group_by": spec.group_by or None, "aggregate": spec.aggregate, "filters": clean, "labels": labels, "series": out,
            "truncated": truncated, "groups_truncated": any(s["other"] for s in out),
            "masked": any(c.get("masked") for c in masked.columns), "elapsed_ms": result.elapsed_ms}


def _group_label(grp: Any, spec: ChartSpec) -> str:
    if not spec.group_by:
        return {"none": spec.y, "count": "count"}.get(spec.aggregate) or f"{spec.aggregate} of {spec.y}"
    return "(empty)" if grp is None else str(grp)


# --------------------------------------------------------------------------- build history


def build_history(user: Any, name: str, limit: Any = None) -> dict[str, Any]:
    """Rows and build seconds of the model's production builds, oldest first: the measurements taken
    after each build, or (before any was taken) the runs' own node records."""
    access.require(user, "catalog.view")
    _main_node(name)
    limit = _int(limit, "limit", 100, 1, MAX_HISTORY)
    measured = list(Measurement.objects.filter(MEASURE_COMPLETE, model=name,
                                               kind__in=(MeasureKind.PRODUCTION, MeasureKind.DEPLOY))
                    .order_by("-measured_at", "-id").values("measured_at", "rows", "seconds", "kind", "run_id")[:limit])
    if measured:
        points = [{"at": m["measured_at"], "rows": m["rows"], "seconds": m["seconds"], "kind": m["kind"],
                   "run": m["run_id"]} for m in measured]
        source = "measurements"
    else:
        nodes = (NodeRun.objects.filter(name=name, resource_type="model", status=NodeStatus.SUCCESS,
                                        run__target=wh.production_schema(), finished_at__isnull=False)
                 .order_by("-finished_at", "-id").values("finished_at", "rows", "seconds", "run_id")[:limit])
        points = [{"at": n["finished_at"], "rows": n["rows"], "seconds": n["seconds"], "kind": "production",
                   "run": n["run_id"]} for n in nodes]
        source = "runs"
    points.reverse()
    return {"model": name, "source": source, "points": points}


# --------------------------------------------------------------------------- saved charts


def may_change(user: Any, chart: Chart) -> bool:
    return chart.owner_id == getattr(user, "pk", None) or access.has_role(user, access.Role.ADMIN)


def get_chart(user: Any, pk: int) -> Chart:
    access.require(user, "catalog.view")
    chart = Chart.objects.select_related("owner").filter(pk=pk).first()
    if chart is None:
        raise NotFound(f"There is no chart {pk}.")
    return chart


def charts_of(user: Any, model: str | None = None):
    access.require(user, "catalog.view")
    charts = Chart.objects.select_related("owner")
    return charts.filter(model=model) if model else charts


def save_chart(user: Any, chart: Chart | None, data: dict[str, Any], *, source: str) -> Chart:
    """Make a chart (chart None) or change one (its owner or a platform admin). Its definition is checked
    against the model's relation when it is new or its definition changes."""
    access.require(user, "catalog.view")
    if chart is not None and not may_change(user, chart):
        raise PermissionDenied("Only the chart's owner or a platform admin may change it.")
    model = chart.model if chart is not None else data.get("model")
    if chart is None:
        if not isinstance(model, str) or not model:
            raise ExploreError("Name the model the chart shows.", field="model")
        _main_node(model)
    title = data.get("title", chart.title if chart else None)
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise ExploreError("Give the chart a title (at most 200 characters).", field="title")
    keys = ("kind", "x", "bucket", "y", "group_by", "aggregate", "filters")
    current = {k: getattr(chart, k) for k in keys} if chart else {}
    merged = {**current, **{k: data[k] for k in keys if k in data}}
    spec = chart_spec(merged)
    if chart is None or any(merged.get(k) != current.get(k) for k in keys):
        validate_chart(user, model, spec)
    chart = chart or Chart(model=model, owner=user)
    chart.title = title.strip()
    chart.kind, chart.x, chart.bucket, chart.y, chart.group_by = spec.kind, spec.x, spec.bucket, spec.y, spec.group_by
    chart.aggregate, chart.filters = spec.aggregate, spec.filters
    created = chart.pk is None
    chart.save()
    audit.record(user, "chart.create" if created else "chart.change", chart, source=source,
                 details={"model": chart.model, "kind": chart.kind})
    return chart


def delete_chart(user: Any, chart: Chart, *, source: str) -> None:
    if not may_change(user, chart):
        raise PermissionDenied("Only the chart's owner or a platform admin may delete it.")
    audit.record(user, "chart.delete", chart, source=source, details={"model": chart.model, "title": chart.title})
    chart.delete()


def spec_of(chart: Chart) -> ChartSpec:
    return ChartSpec(chart.kind, chart.x, chart.y, chart.group_by, chart.aggregate, list(chart.filters or []),
                     chart.bucket or "")
