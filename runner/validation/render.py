"""Render the analyst's model in the engine's sandbox, keeping track of where everything came from.

`ref('x')` renders as `"dmaas__ref"."x"` and `source('a', 'b')` as `"dmaas__src__<n>"."<identifier>"`:
valid SQL in every dialect that the column checks can recognise again, whatever the model's schema
will be. Each call is recorded with its place in the source text, for "did you mean" and cycles.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from runner.engine.compiler import EXPR_RE, MacroReturn, Relation, _jinja_line, _literal_call
from runner.engine.errors import ProjectError
from runner.engine.sandbox import RenderLimitError, render

from .mapping import SourceMap, Tag, instrument, scan_tags, strip_markers

REF_DB = "dmaas__ref"
SRC_DB = "dmaas__src__"
THIS_DB = "dmaas__this"
CONTEXT_NAMES = ("ref", "source", "config", "this", "is_incremental", "model")
UNDEFINED_RE = re.compile(r"'([^']+)' is undefined")


@dataclass
class Call:
    kind: str  # "ref" or "source"
    name: str  # model name, or "source.table"
    start: int | None = None  # source offsets of the literal(s) naming it, when found
    end: int | None = None
    line: int | None = None  # the template line, when the literal was not found
    name_start: int | None = None  # ref: the model name inside its quotes
    name_end: int | None = None


@dataclass
class JinjaProblem:
    message: str
    line: int | None
    word: str | None = None  # underline this word on the line, when it is there
    start: int | None = None  # or these source offsets
    end: int | None = None
    suggestion: str | None = None


@dataclass
class Rendered:
    smap: SourceMap | None
    calls: list[Call] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    problem: JinjaProblem | None = None
    sources: dict[str, str] = field(default_factory=dict)  # sentinel schema -> "source.table"


class _Config:
    def __init__(self, state: _State):
        self._state = state

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if args and isinstance(args[0], dict):
            kwargs = {**args[0], **kwargs}
        self._state.config.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.config.get(key, default)

    def require(self, key: str) -> Any:
        return self._state.config.get(key)


class _State:
    def __init__(self, name: str, source_identifier: Callable[[str, str], str | None]):
        self.name = name
        self.source_identifier = source_identifier
        self.calls: list[Call] = []
        self.config: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.template: jinja2.Template | None = None
        self.tag: Tag | None = None  # the fast path's current tag

    def _line(self) -> int | None:
        frame = sys._getframe(2)
        while frame is not None:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None and template is self.template:
                return template.get_corresponding_lineno(frame.f_lineno)
            frame = frame.f_back
        return None

    def ref(self, *args: Any, **kwargs: Any) -> Relation:
        if not args or len(args) > 2 or not all(isinstance(a, str) for a in args):
            raise jinja2.TemplateRuntimeError("ref() takes a model name in quotes, for example ref('orders')")
        name = args[-1]
        self.calls.append(Call("ref", name, line=self._line()))
        return Relation(REF_DB, name)

    def source(self, *args: Any, **kwargs: Any) -> Relation:
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise jinja2.TemplateRuntimeError("source() takes a source name and a table name, "
                                              "for example source('raw', 'customers')")
        key = f"{args[0]}.{args[1]}"
        self.calls.append(Call("source", key, line=self._line()))
        schema = next((s for s, k in self.sources.items() if k == key), None)
        if schema is None:
            schema = f"{SRC_DB}{len(self.sources)}"
            self.sources[schema] = key
        return Relation(schema, self.source_identifier(args[0], args[1]) or args[1])

    def context(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "source": self.source, "config": _Config(self),
            "this": Relation(THIS_DB, self.name), "is_incremental": lambda: False,
            "model": {"name": self.name, "unique_id": f"model.{self.name}", "resource_type": "model", "config": {}},
        }


def render_model(text: str, name: str, env: jinja2.Environment, macros: set[str],
                 source_identifier: Callable[[str, str], str | None]) -> Rendered:
    """Render `text` (a model's SQL with Jinja) and map the output back to it."""
    state = _State(name, source_identifier)
    tags = scan_tags(text)
    try:
        smap = _fast(text, tags, state, env, macros)
        if smap is None:
            smap = _full(text, tags, state, env)
    except (jinja2.TemplateError, SecurityError, RenderLimitError, MacroReturn, ProjectError, TypeError,
            ValueError, ArithmeticError, LookupError, AttributeError, RecursionError) as err:
        problem = _problem(err, text, tags, state, env)
        return Rendered(None, _locate(text, state.calls), dict(state.config), problem, dict(state.sources))
    return Rendered(smap, _locate(text, state.calls), dict(state.config), None, dict(state.sources))


def _fast(text: str, tags: list[Tag], state: _State, env: jinja2.Environment,
          macros: set[str]) -> SourceMap | None:
    """Models whose only Jinja is `{{ f('literal', ...) }}`: rendered without Jinja's compiler (~2 ms)."""
    if not tags:
        return SourceMap.identity(text)
    calls = []
    for tag in tags:
        if tag.kind != "{{" or not tag.closed:
            return None
        m = EXPR_RE.fullmatch(text, tag.start, tag.end)
        call = _literal_call(m.group(1)) if m else None
        if call is None or not (call[0] in ("ref", "source", "config", "var") or call[0] in macros):
            return None
        calls.append(call)
    functions = {"ref": state.ref, "source": state.source, "config": _Config(state), "var": env.globals["var"]}
    out: list[str] = []
    anchors: list[tuple[int, int, int]] = []
    pos = size = 0
    for tag, (fn_name, args, kwargs) in zip(tags, calls, strict=True):
        anchors.append((size, pos, 0))
        out.append(text[pos:tag.start])
        size += tag.start - pos
        state.tag = tag
        produced = str((functions.get(fn_name) or env.globals[fn_name])(*args, **kwargs))
        if produced:
            anchors.append((size, tag.start, 1))
            out.append(produced)
            size += len(produced)
        pos = tag.end
    anchors.append((size, pos, 0))
    out.append(text[pos:])
    deduped: list[tuple[int, int, int]] = []
    for a in anchors:
        if deduped and deduped[-1][0] == a[0]:
            deduped[-1] = a
        else:
            deduped.append(a)
    return SourceMap(text, "".join(out), deduped, {t.start: t for t in tags})


def _full(text: str, tags: list[Tag], state: _State, env: jinja2.Environment) -> SourceMap:
    template = env.from_string(instrument(text, tags))
    state.template = template
    return strip_markers(text, render(template, state.context()), tags)


def _locate(text: str, calls: list[Call]) -> list[Call]:
    """Find each call's literal in the source: the n-th ref('x') call is the n-th ref('x') written."""
    seen: dict[tuple[str, str], int] = {}
    for call in calls:
        key = (call.kind, call.name)
        if call.kind == "ref":
            pattern = r"\bref\(\s*(?:(['\"])[^'\"]*\1\s*,\s*)?(['\"])(" + re.escape(call.name) + r")\2"
        else:
            source_name, _, table = call.name.partition(".")
            pattern = (r"\bsource\(\s*(['\"])" + re.escape(source_name) + r"\1\s*,\s*(['\"])("
                       + re.escape(table) + r")\2")
        matches = list(re.finditer(pattern, text))
        n = seen.get(key, 0)
        seen[key] = n + 1
        if matches:
            m = matches[min(n, len(matches) - 1)]
            call.start, call.end = m.start(), m.end() + 1 if text[m.end():m.end() + 1] == ")" else m.end()
            call.name_start, call.name_end = m.start(3), m.end(3)
    return calls


def _problem(err: BaseException, text: str, tags: list[Tag], state: _State, env: jinja2.Environment) -> JinjaProblem:
    if isinstance(err, jinja2.TemplateSyntaxError):
        unclosed = next((t for t in tags if not t.closed), None)
        if unclosed is not None:
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[unclosed.kind]
            return JinjaProblem(f"Jinja: this {unclosed.kind} is never closed with {closer}.", None,
                                start=unclosed.start, end=unclosed.start + 2)
        return JinjaProblem(f"Jinja syntax error: {err.message}. Check that every {{{{ has its }}}} and every "
                            "{% if %} or {% for %} is closed.", err.lineno)
    line = state.tag and text.count("\n", 0, state.tag.start) + 1
    if not line:
        line = _jinja_line(err)
    if isinstance(err, jinja2.UndefinedError):
        m = UNDEFINED_RE.search(str(err.message or ""))
        if m:
            word = m.group(1)
            known = [k for k in env.globals if not k.startswith("_")] + list(CONTEXT_NAMES)
            close = difflib.get_close_matches(word, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else (
                " Models can use ref, source, config, var, this, is_incremental and the project's macros.")
            return JinjaProblem(f"Jinja: {word} is not defined.{hint}", line, word=word,
                                suggestion=close[0] if close else None)
        return JinjaProblem(f"Jinja: {err.message}", line)
    if isinstance(err, SecurityError):
        return JinjaProblem(f"Jinja: not allowed in a model: {err}. Models may use ref, source, config, var "
                            "and macros, not Python internals.", line)
    if isinstance(err, MacroReturn):
        return JinjaProblem("Jinja: return() is only allowed inside a macro.", line)
    if isinstance(err, ProjectError):
        return JinjaProblem(f"Jinja: {err.message}", line)
    if isinstance(err, RecursionError):
        return JinjaProblem("Jinja: the template calls itself too deeply.", line)
    message = getattr(err, "message", None) or str(err)
    return JinjaProblem(f"Jinja error: {message}", line)
