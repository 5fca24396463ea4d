"""Is the rendered SQL one query, in the warehouse's syntax? Positions are offsets of the rendered SQL.

On DuckDB the warehouse's own parser decides (exact, and fast); on PostgreSQL sqlglot in the postgres
dialect does, as in runner/engine/sqlcheck.py. sqlglot then reads the query for the column checks; when
it cannot read a query that DuckDB accepts, the columns are simply not checked (never a false error).
Nesting is measured before any parser sees the text: deeply nested SQL can overflow the native stack of
the compiled parser, which no `except` can catch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from runner.engine.sqlcheck import MAX_NESTING, QUERY_STARTS, nesting_depth

CASE_RE = re.compile(r"\b(case|end)\b", re.I)
STRING_OR_COMMENT_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)
LINE_RE = re.compile(r"^LINE (\d+): ")
NEAR_RE = re.compile(r'at or near "(.*)"\s*$')
KEYWORDS = ("select", "from", "where", "group", "order", "by", "join", "having", "limit", "union", "left", "inner",
            "on", "as", "with", "case", "when", "then", "else", "end", "and", "distinct", "over", "partition")
WORD_BEFORE_RE = re.compile(r"([A-Za-z_]+)\s+$")


@dataclass
class Problem:
    code: str
    message: str
    start: int  # output offsets; end exclusive
    end: int
    near: bool = False  # the message names the text at the span: say it in the analyst's words
    fix: str | None = None  # what the text at the span should be, when that is clear


def misspelt_keyword(sql: str, start: int) -> Problem | None:
    """`amount form x`: the word before the error is a near miss of a keyword: point at it."""
    import difflib

    m = WORD_BEFORE_RE.search(sql, max(0, start - 40), start)
    if m is None or m.group(1).lower() in KEYWORDS:
        return None
    close = difflib.get_close_matches(m.group(1).lower(), KEYWORDS, n=1, cutoff=0.75)
    if not close or len(m.group(1)) < 3:
        return None
    word = close[0] if m.group(1).islower() else close[0].upper()
    return Problem("syntax", f"Syntax error: is “{m.group(1)}” meant to be “{word}”?", m.start(1), m.end(1), fix=word)


def too_deep(sql: str) -> Problem | None:
    if nesting_depth(sql) > MAX_NESTING:
        return Problem("syntax", f"The query nests brackets more than {MAX_NESTING} deep; split it into "
                       "several models or CTEs.", 0, 0)
    depth = deepest = 0
    for m in CASE_RE.finditer(STRING_OR_COMMENT_RE.sub(" ", sql) if "case" in sql.lower() else ""):
        depth += 1 if m.group(1).lower() == "case" else -1 if depth else 0
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        return Problem("syntax", f"The query nests CASE expressions more than {MAX_NESTING} deep.", 0, 0)
    return None


def statement_problem(sql: str) -> Problem | None:
    """Empty, several statements, or not a query (DuckDB's tokenizer knows strings and comments)."""
    import duckdb

    if not sql.strip():
        return Problem("not_a_query", "The model is empty: write one select query.", 0, 0)
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        return None  # the syntax check says what is wrong
    starts: list[tuple[int, int, str]] = []  # (offset, end, first word) of each statement
    semicolons: list[int] = []
    expecting = True
    for i, (pos, kind) in enumerate(tokens):
        if kind.name == "comment":
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        word = sql[pos:end].strip()
        if kind.name == "operator" and word.startswith(";"):
            semicolons.append(pos)
            expecting = True
            continue
        if expecting:
            starts.append((pos, pos + len(word.split()[0]) if word else end, word.split()[0].lower() if word else ""))
            expecting = False
    if len(starts) > 1:
        first_semicolon = next(s for s in semicolons if s > starts[0][0])
        return Problem("multiple_statements",
                       f"A model must be exactly one query, but this has {len(starts)} statements: remove the "
                       "extra statements and the semicolons between them.", first_semicolon, len(sql.rstrip()))
    if starts and starts[0][2] not in QUERY_STARTS and not starts[0][2].startswith("("):
        pos, end, word = starts[0]
        return Problem("not_a_query", f"A model must be a select query, not a {word.upper()} statement: the "
                       "platform creates the table or view for you.", pos, end)
    return None


def syntax_problem(sql: str, dialect: str) -> Problem | None:
    if dialect == "duckdb":
        return _duckdb_problem(sql)
    try:
        sqlglot.parse(sql, read=dialect)
    except ParseError as err:
        return _sqlglot_problem(sql, err)
    except TokenError as err:
        return Problem("syntax", f"Syntax error: {err}.", 0, 0)
    return None


def parse(sql: str, dialect: str) -> exp.Expression | None:
    """The query's tree for the column checks, or None when sqlglot cannot read it."""
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except (ParseError, TokenError, RecursionError, ValueError):
        return None
    return trees[0] if len(trees) == 1 else None


def _offset(sql: str, line: int, column: int) -> int:
    """Output offset of a 1-based line and 0-based column."""
    start = 0
    for _ in range(line - 1):
        nl = sql.find("\n", start)
        if nl < 0:
            break
        start = nl + 1
    return min(start + max(column, 0), len(sql))


def _duckdb_problem(sql: str) -> Problem | None:
    import duckdb

    try:
        duckdb.extract_statements(sql)
    except duckdb.Error as err:
        text = str(err)
        first = text.split("\n", 1)[0].split(": ", 1)[-1]
        lines = text.split("\n")
        near = NEAR_RE.search(first)
        message = f"Syntax error near “{near.group(1)}”." if near else f"Syntax error: {first}."
        message += _hint(first, near.group(1) if near else "")
        for i, shown in enumerate(lines):
            m = LINE_RE.match(shown)
            if not m or i + 1 >= len(lines) or "^" not in lines[i + 1]:
                continue
            number = int(m.group(1))
            snippet, caret = shown[m.end():], lines[i + 1]
            at = caret.index("^") - m.end()
            width = len(caret.rstrip()) - caret.index("^")
            actual = (sql.split("\n") + [""])[number - 1] if number >= 1 else ""
            if snippet.startswith("..."):
                visible = snippet[3:].removesuffix("...")
                found = actual.find(visible)
                at = at - 3 + (found if found >= 0 else 0)
            start = _offset(sql, number, at)
            return misspelt_keyword(sql, start) or Problem("syntax", message, start,
                                                           min(start + max(width, 1), len(sql)), near=bool(near))
        return Problem("syntax", message, 0, 0)
    return None


def _sqlglot_problem(sql: str, err: ParseError) -> Problem:
    first = err.errors[0] if err.errors else {}
    highlight = first.get("highlight") or ""
    description = first.get("description") or str(err)
    message = f"Syntax error near “{highlight}”: {description.lower()}." if highlight else f"Syntax error: {description}."
    message += _hint(description, highlight)
    line, col = first.get("line"), first.get("col")
    if not line:
        return Problem("syntax", message, 0, 0)
    end = _offset(sql, line, col)
    start = max(0, end - len(highlight))
    return misspelt_keyword(sql, start) or Problem("syntax", message, start, max(end, 1), near=bool(highlight))


def _hint(message: str, near: str) -> str:
    lowered = message.lower()
    if "unterminated" in lowered:
        return " A quoted text or name is not closed."
    if near.lower() in ("from", "where", "group", "order", "having", "limit", "join", "on", "union"):
        return " Check the line before it: a trailing comma, an operator without a value, or a missing bracket."
    return " Check for a missing comma, a misspelt keyword or an unclosed bracket."
