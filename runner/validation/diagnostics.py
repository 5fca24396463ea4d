"""What the editor gets back: diagnostics at positions of the analyst's own text, with fixes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Span:
    """1-based line and column; the end is exclusive (the column just after the last character)."""

    line: int
    column: int
    end_line: int
    end_column: int

    def as_dict(self) -> dict[str, int]:
        return {"line": self.line, "column": self.column, "end_line": self.end_line, "end_column": self.end_column}


@dataclass(frozen=True)
class Fix:
    label: str
    replace: Span
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "replace": self.replace.as_dict(), "text": self.text}


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    code: str
    message: str
    span: Span
    fixes: tuple[Fix, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, **self.span.as_dict(),
                "fixes": [f.as_dict() for f in self.fixes]}


@dataclass
class Result:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    columns: list[dict[str, Any]] = field(default_factory=list)
    compiled: str = ""  # the SQL as rendered (for debugging and tests; not sent to the editor)

    def as_dict(self) -> dict[str, Any]:
        order = {ERROR: 0, WARNING: 1, INFO: 2}
        diags = sorted(self.diagnostics, key=lambda d: (d.span.line, d.span.column, order.get(d.severity, 3)))
        return {"diagnostics": [d.as_dict() for d in diags], "refs": self.refs, "sources": self.sources,
                "columns": self.columns}

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]
