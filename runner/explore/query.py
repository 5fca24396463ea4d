"""The query builder: the model's production relation and its real columns, filters, rows, profiles.

See the package's docstring (runner/explore/__init__.py) for what makes these queries safe.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from sqlglot import exp

from models_service import access
from models_service.errors import InvalidInput, NotFound, ServiceError
from models_service.git_store import MAIN_REF
from models_service.index import MAIN
from models_service.models import IndexedNode, NodeKind
from runner import warehouse as wh
from runner.observe import pii

OPS = ("=", "!=", "<", "<=", ">", ">=", "contains", "starts_with", "is_null", "not_null", "in")
AGGREGATES = ("none", "count", "sum", "avg", "min", "max")
ORDERS = ("asc", "desc")
MAX_PAGE = 500  # rows per page of the preview
DEFAULT_PAGE = 50
MAX_OFFSET = 100_000
MAX_FILTERS = 20
MAX_IN_VALUES = 100
MAX_VALUE_CHARS = 1000
HISTOGRAM_BINS = 20
TOP_VALUES = 20
MAX_BUCKETS = 400  # of a date histogram
MAX_POINTS = 1000  # x values of an aggregated chart
MAX_RAW_POINTS = 5000  # rows of a chart without an aggregate (scatter)
MAX_GROUPS = 12  # series; the rest is summed up as "Other"
MAX_HISTORY = 500
COMPARE = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
NOT_BUILT = re.compile(r"does not exist|Table with name .* does not exist|Catalog Error", re.I)


class ExploreError(InvalidInput):
    """A request the query builder refuses (400): an unknown column, operator, or a value of the wrong kind."""


class NotBuilt(ServiceError):
    code = "not_built"
    status = 409


class ExploreFailed(ServiceError):
    """The warehouse did not answer: timeout or failure (400), busy (503)."""

    def __init__(self, err: wh.PreviewError):
        super().__init__(err.message)
        self.code = err.code
        self.status = 503 if err.code == "busy" else 400


# --------------------------------------------------------------------------- the relation and its columns


def kind_of(type_name: str) -> str:
    """number | date | timestamp | boolean | text | other, from a DuckDB or PostgreSQL type name."""
    t = type_name.strip().lower()
    if t.endswith("]") or t.startswith(("struct", "map", "union", "list", "array", "json", "blob", "bytea")):
        return "other"
    t = t.split("(", 1)[0].strip()
    if "interval" in t:
        return "other"
    if "timestamp" in t or t == "datetime":
        return "timestamp"
    if t == "date":
        return "date"
    if t.startswith("bool"):
        return "boolean"
    if re.search(r"int|numeric|decimal|double|real|float|money", t):
        return "number"
    if re.search(r"char|text|string|uuid|enum", t):
        return "text"
    return "other"


def _is_integer(type_name: str) -> bool:
    t = type_name.lower().split("(", 1)[0]
    return "int" in t and "interval" not in t and "point" not in t


@dataclass
class Relation:
    model: str
    schema: str
    identifier: str
    dialect: str
    columns: list[dict[str, str]]  # name, type, kind

    def table(self) -> exp.Table:
        return exp.Table(this=exp.to_identifier(self.identifier, quoted=True),
                         db=exp.to_identifier(self.schema, quoted=True))

    def sql(self) -> str:
        return self.table().sql(self.dialect)

    def column(self, name: Any, field: str = "column") -> dict[str, str]:
        if not isinstance(name, str) or not name:
            raise ExploreError(f"Name a column of {self.model}.", field=field)
        for col in self.columns:
            if col["name"] == name:
                return col
        known = ", ".join(c["name"] for c in self.columns[:30])
        raise ExploreError(f"{self.model} has no column {name[:200]!r}; its columns are: {known}.", field=field)


def _ident(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _main_node(name: str) -> IndexedNode:
    node = IndexedNode.objects.filter(ref=MAIN, kind__in=(NodeKind.MODEL, NodeKind.SEED), name=name,
                                      deleted=False).first()
    if node is None:
        raise NotFound(f"There is no model {str(name)[:200]} on main.")
    return node


def indexed_model(user: Any, name: str) -> dict[str, Any]:
    """The model on main as the index knows it (no warehouse call): name, description, materialization
    and its documented columns [{"name", "type"}], for pages that show the explore panel."""
    access.require(user, "catalog.view")
    node = _main_node(name)
    columns = [{"name": c.name, "type": c.data_type} for c in node.columns.all()]
    return {"name": node.name, "description": node.description, "materialized": node.materialized,
            "kind": node.kind, "columns": columns}


def _relation_name(name: str) -> tuple[str, str]:
    """(schema, identifier) of the model on main, as the production run builds it (custom schema, alias)."""
    from models_service.repo import get_store
    from runner import runs
    from runner.engine.errors import ProjectError

    schema = wh.production_schema()
    sha = get_store().tip(MAIN_REF)
    if sha:
        try:
            manifest = runs.manifest_for(sha, schema)
        except (ProjectError, ValueError):  # main does not compile: the production run could not either
            return schema, name
        uid = manifest.project.model_uid(name)
        if uid is not None and uid in manifest.relations:
            return manifest.relations[uid]
    return schema, name


def _run(sql: str, limit: int) -> wh.QueryResult:
    try:
        return wh.get_warehouse().preview(sql, limit)
    except wh.PreviewError as err:
        raise ExploreFailed(err) from None


def relation_of(user: Any, name: str) -> Relation:
    """The model's production relation with its real columns; NotFound, or NotBuilt before its first build."""
    access.require(user, "catalog.view")
    node = _main_node(name)
    if node.materialized == "ephemeral":
        raise ExploreError(f"{name} is ephemeral: it is inlined into the models that use it and has no "
                           "table to explore.", field="model")
    schema, identifier = _relation_name(name)
    warehouse = wh.get_warehouse()
    rel = Relation(name, schema, identifier, warehouse.dialect, [])
    try:
        result = warehouse.preview(f"select * from {rel.sql()}", 0)
    except wh.PreviewError as err:
        if err.code == "preview_failed" and NOT_BUILT.search(err.message):
            raise NotBuilt(f"{name} has not been built in production yet ({schema}.{identifier} does not "
                           "exist): it can be explored after its next run.") from None
        raise ExploreFailed(err) from None
    rel.columns = [{"name": c["name"], "type": c["type"], "kind": kind_of(c["type"])} for c in result.columns]
    return rel


# --------------------------------------------------------------------------- filters


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ExploreError("The value must be text or a number.", field=field)
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        raise ExploreError(f"The value is too long (at most {MAX_VALUE_CHARS} characters).", field=field)
    return text


def _literal(col: dict[str, str], value: Any, field: str) -> exp.Expression:
    """The value as a literal of the column's kind; a value that is not of that kind is refused."""
    kind, name = col["kind"], col["name"]
    if value is None:
        raise ExploreError(f"Give a value to compare {name} with (or use is_null).", field=field)
    if kind == "number":
        if isinstance(value, bool):
            raise ExploreError(f"{name} holds numbers: {value!r} is not one.", field=field)
        try:
            number = decimal.Decimal(str(value).strip()) if isinstance(value, (str, int, float)) else None
        except decimal.InvalidOperation:
            number = None
        if number is None or not number.is_finite() or len(str(value)) > 60:
            raise ExploreError(f"{name} holds numbers: {str(value)[:60]!r} is not one.", field=field)
        return exp.Literal.number(format(number, "f"))
    if kind == "boolean":
        word = str(value).strip().lower()
        if word not in ("true", "false", "1", "0"):
            raise ExploreError(f"{name} is true or false: {str(value)[:60]!r} is neither.", field=field)
        return exp.Boolean(this=word in ("true", "1"))
    if kind in ("date", "timestamp"):
        text = _text(value, field).strip()
        try:
            parsed: dt.date = dt.date.fromisoformat(text) if kind == "date" else dt.datetime.fromisoformat(text)
        except ValueError:
            example = "2024-01-31" if kind == "date" else "2024-01-31 or 2024-01-31T12:00"
            raise ExploreError(f"{name} holds {kind}s: write {text[:60]!r} as {example}.", field=field) from None
        return exp.cast(exp.Literal.string(parsed.isoformat()), "date" if kind == "date" else "timestamp")
    return exp.Literal.string(_text(value, field))


def _like(value: str, prefix_only: bool) -> exp.Literal:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return exp.Literal.string(f"{'' if prefix_only else '%'}{escaped}%")


def _condition(rel: Relation, spec: Any, index: int, user: Any) -> tuple[exp.Expression, dict[str, Any]]:
    field = f"filters[{index}]"
    if not isinstance(spec, dict):
        raise ExploreError('A filter is {"column": ..., "op": ..., "value": ...}.', field=field)
    col = rel.column(spec.get("column"), f"{field}.column")
    op = spec.get("op")
    if op not in OPS:
        raise ExploreError(f"Unknown operator {str(op)[:40]!r}: use one of {', '.join(OPS)}.", field=f"{field}.op")
    if op not in ("is_null", "not_null"):
        _require_pii(user, rel, col["name"], "filter on")
    column: exp.Expression = _ident(col["name"])
    value = spec.get("value")
    clean: dict[str, Any] = {"column": col["name"], "op": op}
    if op == "is_null":
        return exp.Is(this=column, expression=exp.Null()), clean
    if op == "not_null":
        return exp.Not(this=exp.Is(this=column, expression=exp.Null())), clean
    if col["kind"] == "other":
        column = exp.cast(column, "text")
        col = {**col, "kind": "text"}
    if op in ("contains", "starts_with"):
        text = _text(value, f"{field}.value")
        if col["kind"] != "text":
            column = exp.cast(column, "text")
        like = exp.ILike(this=column, expression=_like(text, op == "starts_with"))
        clean["value"] = text
        return exp.Escape(this=like, expression=exp.Literal.string("\\")), clean
    if op == "in":
        values = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or len(values) > MAX_IN_VALUES:
            raise ExploreError(f"'in' takes a list of 1 to {MAX_IN_VALUES} values.", field=f"{field}.value")
        literals = [_literal(col, v, f"{field}.value") for v in values]
        clean["value"] = values
        return exp.In(this=column, expressions=literals), clean
    clean["value"] = value
    return COMPARE[op](this=column, expression=_literal(col, value, f"{field}.value")), clean


def where_of(rel: Relation, filters: Any, user: Any) -> tuple[exp.Expression | None, list[dict[str, Any]]]:
    """The filters, all of which must hold, as one condition (None: no filter) and as understood."""
    if filters in (None, ""):
        return None, []
    if not isinstance(filters, list):
        raise ExploreError("filters is a list of {column, op, value}.", field="filters")
    if len(filters) > MAX_FILTERS:
        raise ExploreError(f"At most {MAX_FILTERS} filters.", field="filters")
    parts = [_condition(rel, f, i, user) for i, f in enumerate(filters)]
    if not parts:
        return None, []
    return exp.and_(*[p[0] for p in parts]), [p[1] for p in parts]


def _where_sql(rel: Relation, condition: exp.Expression | None, extra: str = "") -> str:
    text = condition.sql(rel.dialect) if condition is not None else ""
    both = " and ".join(f"({t})" for t in (text, extra) if t)
    return f" where {both}" if both else ""


def _require_pii(user: Any, rel: Relation, column: str, doing: str) -> None:
    if column.lower() in pii.confirmed_columns(rel.model) and not access.can(user, "pii.view"):
        raise PermissionDenied(f"{column} holds personal data: to {doing} it you need the pii.view "
                                      "permission (legal or platform admins).")


def _masked(user: Any, rel: Relation, columns: list[str], rows: list[list[Any]], where: str, source: str,
            elapsed_ms: float = 0.0) -> wh.QueryResult:
    """Rows of values (named after the model's columns) through the PII gate."""
    result = wh.QueryResult([{"name": c, "type": ""} for c in columns], rows, len(rows), False, elapsed_ms)
    return pii.mask_result(user, rel.model, result, where=where, source=source)


# --------------------------------------------------------------------------- rows


def _int(value: Any, field: str, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ExploreError(f"{field} must be a whole number.", field=field) from None
    if number < low or number > high:
        raise ExploreError(f"{field} must be between {low} and {high}.", field=field)
    return number


def rows(user: Any, name: str, *, filters: Any = None, sort: str | None = None, order: str | None = None,
         limit: Any = None, offset: Any = None, source: str = "api") -> dict[str, Any]:
    """A page of the relation's rows, filtered and sorted, with how many rows match."""
    rel = relation_of(user, name)
    condition, clean = where_of(rel, filters, user)
    limit = _int(limit, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _int(offset, "offset", 0, 0, MAX_OFFSET)
    order = order or "asc"
    if order not in ORDERS:
        raise ExploreError("order is asc or desc.", field="order")
    query = exp.select("*").from_(rel.table())
    if condition is not None:
        query = query.where(condition)
    if sort:
        rel.column(sort, "sort")
        _require_pii(user, rel, sort, "sort by")
        query = query.order_by(exp.Ordered(this=_ident(sort), desc=order == "desc", nulls_first=False))
    query = query.limit(limit + 1)
    if offset:
        query = query.offset(offset)
    result = _run(query.sql(rel.dialect), limit)
    result = pii.mask_result(user, rel.model, result, where="explore", source=source)
    total = result.row_count
    if offset or result.truncated:
        total = _run(f"select count(*) as n from {rel.sql()}{_where_sql(rel, condition)}", 1).rows[0][0]
    kinds = {c["name"]: c["kind"] for c in rel.columns}
    columns = [{**c, "kind": kinds.get(c["name"], "other")} for c in result.columns]
    return {"model": rel.model, "relation": f"{rel.schema}.{rel.identifier}", "columns": columns,
            "rows": result.rows, "row_count": result.row_count, "truncated": result.truncated,
            "total": int(total), "offset": offset, "limit": limit, "sort": sort or None,
            "order": order if sort else None, "filters": clean, "elapsed_ms": result.elapsed_ms}


# --------------------------------------------------------------------------- profile


def profile(user: Any, name: str, column: str, *, filters: Any = None, source: str = "api") -> dict[str, Any]:
    """What one column holds: numbers as a histogram of ~20 equal bins, dates by day, month or year,
    anything else as its 20 most frequent values; always the row and null counts."""
    rel = relation_of(user, name)
    col = rel.column(column)
    condition, _clean = where_of(rel, filters, user)
    out: dict[str, Any] = {"model": rel.model, "column": col["name"], "type": col["type"], "kind": col["kind"],
                           "histogram": None, "top": None, "unit": None, "min": None, "max": None,
                           "distinct": None, "masked": False}
    if col["kind"] == "number":
        out.update(_number_profile(rel, col, condition))
    elif col["kind"] in ("date", "timestamp"):
        out.update(_time_profile(rel, col, condition))
    else:
        out.update(_top_profile(rel, col, condition))
    # The values (edges, top values, min and max) through the PII gate; the counts are not values.
    name_ = col["name"]
    if out["histogram"] is not None:
        bins = _masked(user, rel, [name_, name_, "count"],
                       [[b["from"], b["to"], b["count"]] for b in out["histogram"]], "explore", source)
        out["histogram"] = [{"from": r[0], "to": r[1], "count": r[2]} for r in bins.rows]
    if out["top"] is not None:
        top = _masked(user, rel, [name_, "count"], [[t["value"], t["count"]] for t in out["top"]], "explore", source)
        out["top"] = [{"value": r[0], "count": r[1]} for r in top.rows]
    bounds = _masked(user, rel, [name_, name_], [[out["min"], out["max"]]], "explore", source)
    out["min"], out["max"] = bounds.rows[0]
    out["masked"] = any(c.get("masked") for c in bounds.columns)
    return out


def _number_profile(rel: Relation, col: dict[str, str], condition: exp.Expression | None) -> dict[str, Any]:
    c = _ident(col["name"]).sql(rel.dialect)
    if _is_integer(col["type"]):  # whole numbers: bins of whole widths, one per value when there are few
        count, width = f"least(s.hi - s.lo + 1, {HISTOGRAM_BINS})", f"((s.hi - s.lo + 1) / least(s.hi - s.lo + 1, {HISTOGRAM_BINS}))"
    else:
        count, width = str(HISTOGRAM_BINS), f"((s.hi - s.lo) / {HISTOGRAM_BINS})"
    sql = (f"with base as (select cast({c} as double precision) as v from {rel.sql()}{_where_sql(rel, condition)}),\n"
           "stats as (select min(v) as lo, max(v) as hi, count(*) as n, count(v) as nn from base),\n"
           f"bins as (select case when s.hi = s.lo then 0 else least(cast(floor((b.v - s.lo) / {width}) as integer), "
           f"{count} - 1) end as bin from base b cross join stats s where b.v is not null)\n"
           f"select s.lo, s.hi, s.n, s.nn, x.bin, x.cnt, {count} as bins, {width} as width from stats s "
           "left join (select bin, count(*) as cnt from bins group by bin) x on true order by x.bin")
    result = _run(sql, HISTOGRAM_BINS + 1)
    lo, hi, n, nn = result.rows[0][:4]
    out: dict[str, Any] = {"rows": int(n), "nulls": int(n) - int(nn), "min": lo, "max": hi, "histogram": []}
    if lo is None or isinstance(lo, str) or isinstance(hi, str):  # no values, or NaN / infinity
        return out
    bins, width = int(result.rows[0][6] or 1), float(result.rows[0][7] or 0)
    counts = {int(r[4]): int(r[5]) for r in result.rows if r[4] is not None}
    if hi == lo:
        out["histogram"] = [{"from": lo, "to": hi, "count": counts.get(0, 0)}]
        return out
    top = hi + 1 if _is_integer(col["type"]) else hi
    out["histogram"] = [{"from": lo + i * width, "to": top if i == bins - 1 else lo + (i + 1) * width,
                         "count": counts.get(i, 0)} for i in range(bins)]
    return out


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None)


def _time_profile(rel: Relation, col: dict[str, str], condition: exp.Expression | None) -> dict[str, Any]:
    c = _ident(col["name"]).sql(rel.dialect)
    stats = _run(f"select min({c}) as lo, max({c}) as hi, count(*) as n, count({c}) as nn "
                 f"from {rel.sql()}{_where_sql(rel, condition)}", 1).rows[0]
    lo, hi, n, nn = stats
    out: dict[str, Any] = {"rows": int(n), "nulls": int(n) - int(nn), "min": lo, "max": hi, "histogram": []}
    first, last = _parse_time(lo), _parse_time(hi)
    if first is None or last is None:
        return out
    days = (last - first).days
    unit = "day" if days <= 92 else "month" if days <= 31 * 120 else "year"
    sql = (f"select cast(date_trunc('{unit}', {c}) as date) as bucket, count(*) as cnt "
           f"from {rel.sql()}{_where_sql(rel, condition, f'{c} is not null')} group by 1 order by 1")
    result = _run(sql, MAX_BUCKETS)
    out["unit"] = unit
    out["histogram"] = [{"from": r[0], "to": r[0], "count": int(r[1])} for r in result.rows]
    out["truncated"] = result.truncated
    return out


def _top_profile(rel: Relation, col: dict[str, str], condition: exp.Expression | None) -> dict[str, Any]:
    c = _ident(col["name"]).sql(rel.dialect)
    value = c if col["kind"] in ("text", "boolean") else f"cast({c} as text)"
    stats = _run(f"select count(*) as n, count({c}) as nn, count(distinct {value}) as d "
                 f"from {rel.sql()}{_where_sql(rel, condition)}", 1).rows[0]
    sql = (f"select {value} as v, count(*) as cnt from {rel.sql()}{_where_sql(rel, condition, f'{c} is not null')} "
           f"group by 1 order by 2 desc, 1 limit {TOP_VALUES}")
    top = [{"value": r[0], "count": int(r[1])} for r in _run(sql, TOP_VALUES).rows]
    n, nn, distinct = int(stats[0]), int(stats[1]), int(stats[2])
    return {"rows": n, "nulls": n - nn, "distinct": distinct, "top": top,
            "other": nn - sum(t["count"] for t in top)}
