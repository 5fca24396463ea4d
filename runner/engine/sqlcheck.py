"""Is a model's compiled SQL exactly one query? Checked with sqlglot before anything reaches a warehouse."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NESTING = 100
FORBIDDEN_INSIDE = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Copy", "Set",
                    "Into", "Lock")  # SELECT ... INTO creates a table; FOR UPDATE/SHARE takes row locks
_INSIDE_NAMES = {"into": "SELECT INTO (it creates a table)", "lock": "FOR UPDATE/SHARE (a row lock)"}


@dataclass
class SqlProblem:
    message: str
    line: int | None = None
    column: int | None = None


def nesting_depth(sql: str) -> int:
    """Deepest parenthesis nesting outside quotes: guards the parser's native stack."""
    depth = deepest = 0
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


QUERY_STARTS = {"select", "with", "from", "values", "table", "pivot", "unpivot", "("}


def statement_problem(sql: str) -> SqlProblem | None:
    """The quick check of a whole project's models (~20 us each): one statement, and a query.

    It reads tokens only (DuckDB's tokenizer, which knows strings, comments and dollar quotes), so
    it cannot judge syntax: `check_query` does, before each model is sent to the warehouse.
    """
    if not sql.strip():
        return SqlProblem("the model is empty: write one select query")
    if nesting_depth(sql) > MAX_NESTING:
        return SqlProblem(f"the query nests parentheses more than {MAX_NESTING} deep")
    import duckdb

    tokens = duckdb.tokenize(sql)
    starts: list[tuple[int, str]] = []  # (offset, first word) of each statement
    expecting = True
    for i, (pos, kind) in enumerate(tokens):
        name = kind.name
        if name == "comment":
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        text = sql[pos:end].strip()
        if name == "operator" and text.startswith(";"):
            expecting = True
            continue
        if expecting:
            starts.append((pos, text.split()[0].lower() if text else ""))
            expecting = False
    if len(starts) > 1:
        line = sql.count("\n", 0, starts[1][0]) + 1
        return SqlProblem(
            f"a model must be exactly one query, but this has {len(starts)} statements: "
            "remove the extra statements and any semicolons between them", line)
    if starts and starts[0][1] not in QUERY_STARTS and not starts[0][1].startswith("("):
        return SqlProblem(f"a model must be a select query, not a {starts[0][1].upper()} statement: "
                          "the platform creates the table for you", sql.count("\n", 0, starts[0][0]) + 1)
    return None


def check_query(sql: str, dialect: str) -> SqlProblem | None:
    """None when `sql` is one SELECT-like query; otherwise what is wrong and where.

    On DuckDB the warehouse's own parser decides (exact, and 5x faster than sqlglot); elsewhere sqlglot
    parses in the warehouse's dialect. Either way an unparseable text is rejected, never let through.
    """
    if not sql.strip():
        return SqlProblem("the model is empty: write one select query")
    if nesting_depth(sql) > MAX_NESTING:
        return SqlProblem(f"the query nests parentheses more than {MAX_NESTING} deep")
    if dialect == "duckdb":
        return _check_duckdb(sql)
    return _check_sqlglot(sql, dialect)


def _check_duckdb(sql: str) -> SqlProblem | None:
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        text = str(err)
        line = re.search(r"LINE (\d+):", text)
        message = text.split("\n", 1)[0].replace("Parser Error: ", "")
        return SqlProblem(f"SQL syntax error: {message}", int(line.group(1)) if line else None)
    if len(statements) != 1:
        return SqlProblem(
            f"a model must be exactly one query, but this has {len(statements)} statements: "
            "remove the extra statements and any semicolons between them"
        )
    kind = statements[0].type.name
    if kind != "SELECT":
        return SqlProblem(f"a model must be a select query, not a {kind} statement: "
                          "the platform creates the table for you")
    return None


def _check_sqlglot(sql: str, dialect: str) -> SqlProblem | None:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        return SqlProblem(
            f"SQL syntax error: {first.get('description') or err}"
            + (f" near '{first.get('highlight')}'" if first.get("highlight") else ""),
            first.get("line"),
            first.get("col"),
        )
    except TokenError as err:
        return SqlProblem(f"SQL syntax error: {err}")
    if len(statements) != 1:
        return SqlProblem(
            f"a model must be exactly one query, but this has {len(statements)} statements: "
            "remove the extra statements and any semicolons between them"
        )
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        kind = (f"a {str(stmt.this).upper()} command" if isinstance(stmt, exp.Command)
                else f"a {stmt.key.upper()} statement")
        return SqlProblem(f"a model must be a select query, not {kind}: the platform creates the table for you")
    for node in stmt.walk():
        if type(node).__name__ in FORBIDDEN_INSIDE:
            return SqlProblem("a model may only read data, but it contains "
                              f"{_INSIDE_NAMES.get(node.key, node.key.upper())}")
    return None
