"""Seeds: CSV files with dbt's type inference (agate's rules as dbt configures them)."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal, InvalidOperation
from typing import Any

NULLS = ("null", "")


def _number(value: str) -> Decimal:
    text = value.strip().replace(",", "")
    if text.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        raise ValueError(value)
    return Decimal(text)


def _date(value: str) -> datetime.date:
    return datetime.datetime.strptime(value.strip(), "%Y-%m-%d").date()  # noqa: DTZ007 -- a date has no zone


def _datetime(value: str) -> datetime.datetime:
    text = value.strip()
    try:
        # seed timestamps are wall-clock values without a zone, as dbt loads them
        return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007
    except ValueError:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _boolean(value: str) -> bool:
    text = value.replace(",", "").strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(value)


CASTS = [("number", _number), ("date", _date), ("datetime", _datetime), ("boolean", _boolean)]


def infer_column(values: list[str]) -> str:
    candidates = [name for name, _ in CASTS]
    for raw in values:
        if raw.strip().lower() in NULLS:
            continue
        for name, cast in CASTS:
            if name in candidates:
                try:
                    cast(raw)
                except (ValueError, InvalidOperation):
                    candidates.remove(name)
        if not candidates:
            return "text"
    return candidates[0] if candidates else "text"


def sql_type(kind: str, values: list[str]) -> str:
    if kind == "number":
        has_decimals = any(
            raw.strip().lower() not in NULLS and _number(raw).as_tuple().exponent < 0  # type: ignore[operator]
            for raw in values
        )
        return "float8" if has_decimals else "integer"
    return {"date": "date", "datetime": "timestamp", "boolean": "boolean"}.get(kind, "text")


def read_seed(text: str, column_types: dict[str, str] | None = None, *, keep_null_word: bool = False
              ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """Columns with their SQL types, and the rows converted to Python values.

    `keep_null_word`: dbt-duckdb loads seeds with DuckDB's COPY, which keeps the word `null` in a text
    column as a string; on DuckDB we do the same so both tools give the same table.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the seed file is empty: it needs a header line") from None
    raw_rows = [row for row in reader if row]
    width = len(header)
    for i, row in enumerate(raw_rows, start=2):
        if len(row) != width:
            raise ValueError(f"line {i} has {len(row)} values but the header has {width} columns")
    overrides = {k.lower(): v for k, v in (column_types or {}).items()}
    columns: list[tuple[str, str]] = []
    casts = []
    for idx, name in enumerate(header):
        values = [row[idx] for row in raw_rows]
        if name.lower() in overrides:
            columns.append((name, overrides[name.lower()]))
            casts.append(None)
            continue
        kind = infer_column(values)
        columns.append((name, sql_type(kind, values)))
        casts.append(kind)
    rows: list[list[Any]] = []
    for row in raw_rows:
        out: list[Any] = []
        for raw, kind, (_, typ) in zip(row, casts, columns, strict=True):
            if raw.strip().lower() in NULLS and not (keep_null_word and kind == "text" and raw.strip()):
                out.append(None)
            elif kind == "number":
                out.append(float(_number(raw)) if typ == "float8" else int(_number(raw)))
            elif kind == "date":
                out.append(_date(raw))
            elif kind == "datetime":
                out.append(_datetime(raw))
            elif kind == "boolean":
                out.append(_boolean(raw))
            else:
                out.append(raw)
        rows.append(out)
    return columns, rows
