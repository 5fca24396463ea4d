"""Validation as the analyst types (issue 5, items 2 and 3): diagnostics at positions of the analyst's text.

Read bottom up:

| module | what it does |
| --- | --- |
| `mapping.py` | markers through Jinja: which source offset each character of the rendered SQL came from |
| `render.py` | renders a model in the engine's sandbox (`ref`/`source` as recognisable relations), records calls |
| `statements.py` | one query? syntax in the warehouse's dialect (DuckDB's own parser, or sqlglot for postgres) |
| `columns.py` | a cacheable summary of a query (tables, column references, outputs) and the column checks |
| `checks.py` | `validate_text`: every check against a `ProjectView` (plain Python, no Django) |
| `service.py` | `validate_model`: the project state from the repository index and git, cached by blob and sha |
"""

from .checks import NodeInfo, ProjectView, validate_text
from .diagnostics import Diagnostic, Fix, Result, Span
from .service import MAX_SQL_BYTES, clear_caches, validate_model

__all__ = ["MAX_SQL_BYTES", "Diagnostic", "Fix", "NodeInfo", "ProjectView", "Result", "Span", "clear_caches",
           "validate_model", "validate_text"]
