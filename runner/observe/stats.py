"""What a build measures of the relation it made: rows, bytes, and statistics per column.

Plain Python over an open engine `Adapter` (no Django), so the benchmark and the CLI can call it too.
Cheap on purpose, because every build pays for it (a production run's relations are measured in one
lease by its judging task after the run; CI builds, deploys and tests in their build):

- ONE aggregate query per relation: `count(*)` and, per column, `count(col)` (nulls), a distinct count
  (DuckDB's HyperLogLog `approx_count_distinct`; PostgreSQL has no cheap estimate of its own outside
  ANALYZE, so an exact `count(distinct)` there), `min`/`max` for numbers and dates, `avg`/`stddev_samp`
  for numbers (as double, so a bigint sum cannot overflow); on PostgreSQL the table's size in bytes
  comes in the same query.
- Top values of the text and boolean columns whose distinct count says they are low-cardinality:
  on DuckDB, for the columns the previous measurement found low-cardinality (`top_hint`), a
  `histogram()` in that same aggregate query; for any other low-cardinality column, ONE grouped query
  after it (GROUPING SETS, one scan). So an hourly run whose columns keep their shape costs one query.
- The columns from DuckDB's `describe` (information_schema is ten times slower there).
- At most MAX_COLUMNS columns (the first ones), so a 400-column table costs a bounded query.
- Big relations (more than SAMPLE_ROWS rows) are measured on a sample of about SAMPLE_ROWS rows
  (a table: the warehouse's block sampling, which reads only the sampled blocks; a view: its first
  rows), so measuring costs about the same for a table of 10 million rows as for one of 10 000.
  10 000 rows put a mean within about 1 % of a standard deviation and a null fraction within about
  half a point, finer than the detector's bands; 50 000 cost a third more on the benchmark project
  for no better alert. A block sample that happens to draw nothing falls back to the first rows.
- A view is run for its first SAMPLE_ROWS rows first; only when it has more is it counted (a view's
  every query runs its SQL, so a small view costs one query, not two).
  The row count stays exact (the build's own count, or `count(*)`); null counts and top-value counts
  are scaled up from the sample, and each column says `sample: n`. Extremes of a sample are not
  the relation's, so the detector does not judge min/max of sampled columns.

Values are made JSON-safe here (dates as ISO text, decimals as floats, NaN and infinities dropped),
because they are stored in Measurement.columns as they come.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.engine.adapters.base import rel
from runner.engine.compiler import quote

MAX_COLUMNS = 100
TOP_MAX_DISTINCT = 20  # a text column with at most this many distinct values gets its top values
TOP_VALUES = 5
MAX_TEXT = 200  # characters of a top value kept
SAMPLE_ROWS = 10_000
SAMPLE_SEED = 42  # the same blocks each time, so a series of samples moves only when the data do

NUMERIC = ("int", "numeric", "decimal", "double", "real", "float", "serial", "money")
TEMPORAL = ("date", "timestamp", "time")
TEXT = ("char", "text", "string", "uuid", "enum")
BOOLEAN = ("bool",)


def kind_of(sql_type: str) -> str:
    """number | date | text | boolean | other, from the type the catalog reports (any dialect's
    spelling: INTEGER, DECIMAL(10,2), character varying, timestamp with time zone, ...)."""
    t = (sql_type or "").lower()
    if t.endswith("[]") or t.startswith(("struct", "map", "union")) or "interval" in t or "json" in t:
        return "other"
    if any(word in t for word in BOOLEAN):
        return "boolean"
    if any(word in t for word in TEMPORAL):
        return "date"
    if any(word in t for word in NUMERIC) or t in ("bigint", "smallint", "tinyint", "hugeint", "ubigint"):
        return "number"
    if any(word in t for word in TEXT):
        return "text"
    return "other"


@dataclass
class RelationStats:
    """One relation's measurement. `columns` as Measurement.columns documents it."""

    schema: str
    name: str
    rows: int | None = None
    bytes: int | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # what measuring cost
    truncated: bool = False  # more than MAX_COLUMNS columns: the first ones were measured

    def as_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "rows": self.rows, "bytes": self.bytes,
                "columns": self.columns, "seconds": self.seconds, "truncated": self.truncated}


def json_safe(value: Any) -> Any:
    """A statistic as JSON keeps it: numbers as float/int (no NaN), dates as ISO text, text capped."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, decimal.Decimal | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return text[:MAX_TEXT]


def _distinct_sql(adapter: Any, col: str) -> str:
    if adapter.dialect == "duckdb":
        return f"approx_count_distinct({col})"
    return f"count(distinct {col})"


def _aggregates(adapter: Any, columns: list[tuple[str, str, str]], histograms: set[str]) -> list[str]:
    """The select list of the one aggregate query, in a fixed order per column kind."""
    parts = ["count(*)"]
    for name, _, kind in columns:
        col = quote(name)
        parts.append(f"count({col})")
        if kind == "other":
            continue
        parts.append(_distinct_sql(adapter, col))
        if kind in ("number", "date"):
            parts += [f"min({col})", f"max({col})"]
        if kind == "number":
            as_double = f"cast({col} as double precision)"
            parts += [f"avg({as_double})", f"stddev_samp({as_double})"]
        if name in histograms:
            parts.append(f"histogram({col})")
    return parts


def _read_aggregates(row: tuple[Any, ...], columns: list[tuple[str, str, str]], histograms: set[str]
                     ) -> tuple[int, list[dict[str, Any]]]:
    values = iter(row)
    rows = int(next(values) or 0)
    out = []
    for name, sql_type, kind in columns:
        filled = int(next(values) or 0)
        nulls = rows - filled
        stats: dict[str, Any] = {"name": name, "type": sql_type, "nulls": nulls,
                                 "null_fraction": round(nulls / rows, 6) if rows else 0.0}
        if kind != "other":
            stats["distinct"] = int(next(values) or 0)
            if kind in ("number", "date"):
                stats["min"], stats["max"] = json_safe(next(values)), json_safe(next(values))
            if kind == "number":
                stats["mean"], stats["stddev"] = json_safe(next(values)), json_safe(next(values))
            if name in histograms:
                counts = next(values) or {}
                if stats["distinct"] <= TOP_MAX_DISTINCT:
                    stats["top"] = _top(counts.items())
        out.append(stats)
    return rows, out


def _top(pairs: Any) -> list[list[Any]]:
    found = [[json_safe(value), int(count)] for value, count in pairs if value is not None]
    return sorted(found, key=lambda pair: (-pair[1], str(pair[0])))[:TOP_VALUES]


def columns_of(adapter: Any, schema: str, name: str) -> list[tuple[str, str]]:
    """(name, type) of the relation's columns, in order."""
    if adapter.dialect == "duckdb":
        return [(r[0], r[1]) for r in adapter.fetchall(f"describe {rel(schema, name)}")]
    return adapter.columns(schema, name)


def _top_values(adapter: Any, relation: str, stats: list[dict[str, Any]], kinds: dict[str, str]) -> None:
    """Top values of the low-cardinality text and boolean columns, in one scan (GROUPING SETS)."""
    chosen = [s for s in stats if kinds[s["name"]] in ("text", "boolean") and "top" not in s
              and 0 < s.get("distinct", 0) <= TOP_MAX_DISTINCT]
    if not chosen:
        return
    cols = [quote(s["name"]) for s in chosen]
    flags = ", ".join(f"grouping({c})" for c in cols)
    sets = ", ".join(f"({c})" for c in cols)
    sql = f"select {flags}, {', '.join(cols)}, count(*) from {relation} group by grouping sets ({sets})"
    found: dict[int, list[tuple[Any, Any]]] = {i: [] for i in range(len(chosen))}
    width = len(chosen)
    for row in adapter.fetchall(sql):
        index = next(i for i in range(width) if row[i] == 0)  # the set this row belongs to
        value = row[width + index]
        found[index].append((value, row[-1]))
    for i, s in enumerate(chosen):
        s["top"] = _top(found[i])
        # a sample is drawn again for this query (and may differ): its own total scales its counts
        s["_top_total"] = sum(int(count) for _, count in found[i])


def _first_rows(relation: str) -> str:
    return f"(select * from {relation} limit {SAMPLE_ROWS}) as dmaas_sample"


def _source(adapter: Any, relation: str, rows: int, is_view: bool) -> tuple[str, float]:
    """What the aggregate reads: the relation, or a sample of about SAMPLE_ROWS rows; and the share."""
    if rows <= SAMPLE_ROWS:
        return relation, 1.0
    share = SAMPLE_ROWS / rows
    if is_view:
        return _first_rows(relation), share
    percent = max(round(100 * share, 4), 0.0001)
    if adapter.dialect == "duckdb":
        return f"{relation} tablesample {percent}% (system, {SAMPLE_SEED})", share
    return f"{relation} tablesample system ({percent}) repeatable ({SAMPLE_SEED})", share


def _scale(columns: list[dict[str, Any]], rows: int, sampled: int) -> None:
    """Counts of a sample, as counts of the whole relation."""
    factor = rows / sampled if sampled else 0.0
    for col in columns:
        col["sample"] = sampled
        col["nulls"] = round(col["nulls"] * factor)
        total = col.pop("_top_total", sampled)
        for pair in col.get("top", []):
            pair[1] = round(pair[1] * rows / total) if total else 0


def measure(adapter: Any, schema: str, name: str, *, kind: str | None = None, rows: int | None = None,
            max_columns: int = MAX_COLUMNS, top_hint: Iterable[str] = ()) -> RelationStats:
    """Measure `schema.name` on `adapter`: one aggregate query, one more for new low-cardinality text
    columns, one more to count the rows of a table when `rows` (the build's exact count) is not given
    or of a view with more than SAMPLE_ROWS rows. Raises what the warehouse raises: the caller decides that a measurement never fails a
    build (runner.observe.record)."""
    started = time.perf_counter()
    catalog = columns_of(adapter, schema, name)
    result = RelationStats(schema, name, truncated=len(catalog) > max_columns)
    columns = [(c, t, kind_of(t)) for c, t in catalog[:max_columns]]
    relation = rel(schema, name)
    kind = kind or adapter.relation_type(schema, name)
    is_view = kind == "view"
    hinted = set(top_hint)
    histograms = {c for c, _, k in columns if k in ("text", "boolean") and c in hinted} \
        if adapter.dialect == "duckdb" else set()
    select = _aggregates(adapter, columns, histograms)
    with_bytes = adapter.dialect == "postgres" and kind == "table"
    if with_bytes:
        quoted = relation.replace("'", "''")
        select.append(f"pg_total_relation_size('{quoted}')")
    if rows is None and is_view:  # its first rows first: fewer than the sample, and that is its count
        source, share = _first_rows(relation), 1.0
        row = adapter.fetchall(f"select {', '.join(select)} from {source}")[0]
        if int(row[0] or 0) >= SAMPLE_ROWS:
            rows = int(adapter.fetchall(f"select count(*) from {relation}")[0][0])
            share = SAMPLE_ROWS / rows
    else:
        if rows is None:
            rows = int(adapter.fetchall(f"select count(*) from {relation}")[0][0])
        source, share = _source(adapter, relation, rows, is_view)
        row = adapter.fetchall(f"select {', '.join(select)} from {source}")[0]
        if share < 1.0 and not row[0]:  # the block sample drew no block: the first rows instead
            source = _first_rows(relation)
            row = adapter.fetchall(f"select {', '.join(select)} from {source}")[0]
    sampled, result.columns = _read_aggregates(row, columns, histograms)
    result.rows = rows if share < 1.0 else sampled
    if with_bytes:
        result.bytes = int(row[-1]) if row[-1] is not None else None
    _top_values(adapter, source, result.columns, {c: k for c, _, k in columns})
    if share < 1.0:
        _scale(result.columns, rows, sampled)
    for col in result.columns:
        col.pop("_top_total", None)
    result.seconds = round(time.perf_counter() - started, 4)
    return result
