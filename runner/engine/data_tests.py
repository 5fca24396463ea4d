"""dbt's generic data tests as SQL: each query returns the failing rows; the wrapper counts them."""

from __future__ import annotations

from typing import Any


def _quote_col(name: str, quote: bool = False) -> str:
    return '"' + name.replace('"', '""') + '"' if quote else name


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def generic_test_sql(kind: str, relation: str, kwargs: dict[str, Any], to_relation: str | None = None) -> str:
    column = kwargs.get("column_name")
    if kind in ("unique", "not_null", "accepted_values", "relationships") and not column:
        raise ValueError(f"{kind} needs a column: put it under a column's tests")
    if kind == "not_null":
        return f"select {column}\nfrom {relation}\nwhere {column} is null"
    if kind == "unique":
        return (
            f"select\n    {column} as unique_field,\n    count(*) as n_records\nfrom {relation}\n"
            f"where {column} is not null\ngroup by {column}\nhaving count(*) > 1"
        )
    if kind == "accepted_values":
        values = kwargs.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError("accepted_values needs a non-empty list under values:")
        quote = kwargs.get("quote", True)
        listed = ", ".join(_literal(v) if quote else str(v) for v in values)
        return (
            f"with all_values as (\n    select {column} as value_field, count(*) as n_records\n"
            f"    from {relation}\n    group by {column}\n)\nselect *\nfrom all_values\n"
            f"where value_field not in ({listed})"
        )
    if kind == "relationships":
        field = kwargs.get("field")
        if not field or not to_relation:
            raise ValueError("relationships needs to: ref('model') and field: column")
        return (
            f"with child as (\n    select {column} as from_field\n    from {relation}\n"
            f"    where {column} is not null\n),\nparent as (\n    select {field} as to_field\n"
            f"    from {to_relation}\n)\nselect from_field\nfrom child\nleft join parent\n"
            f"    on child.from_field = parent.to_field\nwhere parent.to_field is null"
        )
    raise ValueError(
        f"unknown test '{kind}': the platform offers unique, not_null, accepted_values and relationships "
        "(or write a singular test in tests/)"
    )


def _condition(expr: Any) -> str:
    text = str(expr or "!= 0").strip()
    for op in ("!=", "<>", ">=", "<=", "=", ">", "<"):
        if text.startswith(op):
            number = text[len(op):].strip()
            if number.replace(".", "", 1).isdigit():
                return f"{op} {number}"
    raise ValueError(f"warn_if/error_if must look like '>10' or '!=0', not {expr!r}")


def wrap_test_sql(sql: str, config: dict[str, Any]) -> str:
    """The failure count and the warn/error verdicts, as dbt computes them."""
    warn_if = _condition(config.get("warn_if"))
    error_if = _condition(config.get("error_if"))
    return (
        f"select count(*) as failures, count(*) {warn_if} as should_warn, count(*) {error_if} as should_error\n"
        f"from (\n{sql}\n) dbt_internal_test"
    )


def test_status(failures: int, should_warn: bool, should_error: bool, severity: str) -> str:
    if str(severity).lower() == "error" and should_error:
        return "fail"
    if should_warn:
        return "warn"
    return "pass"
