"""Explore a model's production relation: rows with sorting and filters, a column's profile, chart data,
the row count and build time over time, and saved charts.

Every query reads one relation only: the model's production table or view, as main's manifest names
it (`<production schema>.<alias or name>`). Nothing the caller sends becomes SQL text of its own:

- column names are checked against the relation's real columns (asked of the warehouse) and quoted as
  identifiers by sqlglot;
- operators come from a whitelist (`OPS`), values are parsed for the column's kind (a number, a date,
  true/false, text) and written as literals by sqlglot (strings quoted with '' doubled; PostgreSQL must
  keep its default `standard_conforming_strings = on`, as every release since 9.1 does);
- sort order, limits and offsets are checked and capped.

Queries run through `runner.warehouse` (`Warehouse.preview`: read-only, time-limited, row-capped), and
every answer that carries a model's values passes through `runner.observe.pii.mask_result`. Filtering,
sorting or charting on a confirmed-PII column needs `pii.view` (a filter would tell a masked value).

Bad input raises `ExploreError` (400, with the field at fault and a sentence saying why).
"""

from .charts import (
    ChartSpec,
    build_history,
    chart_data,
    chart_spec,
    charts_of,
    delete_chart,
    get_chart,
    may_change,
    save_chart,
    spec_of,
    validate_chart,
)
from .query import (
    AGGREGATES,
    MAX_GROUPS,
    MAX_PAGE,
    MAX_POINTS,
    OPS,
    ExploreError,
    ExploreFailed,
    NotBuilt,
    Relation,
    indexed_model,
    kind_of,
    profile,
    relation_of,
    rows,
    where_of,
)

__all__ = [
    "AGGREGATES", "MAX_GROUPS", "MAX_PAGE", "MAX_POINTS", "OPS", "ChartSpec", "ExploreError", "ExploreFailed",
    "NotBuilt", "Relation", "build_history", "chart_data", "chart_spec", "charts_of", "delete_chart", "get_chart",
    "indexed_model", "kind_of", "may_change", "profile", "relation_of", "rows", "save_chart", "spec_of", "validate_chart", "where_of",
]
