"""The Jinja sandbox every model, test and macro is rendered in.

SandboxedEnvironment refuses underscore attributes, unsafe `str.format`/`format_map` and mutation of
built-in types; on top of it every render has a deadline and an output cap, and `range` yields lazily
so that loops cannot hang a worker. Nothing a template can reach leads to Python internals, the
environment, files or the network.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

MAX_RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 100_000


class RenderLimitError(RuntimeError):
    pass


class _Limits(threading.local):
    deadline: float = 0.0


_limits = _Limits()


def check_deadline() -> None:
    if _limits.deadline and time.monotonic() > _limits.deadline:
        raise RenderLimitError(
            f"rendering took longer than {MAX_RENDER_SECONDS:g} s; a loop in the template is too large"
        )


class LimitedRange:
    """`range` for templates: capped length, and each step checks the render deadline."""

    def __init__(self, *args: int):
        self._range = range(*args)
        if len(self._range) > MAX_RANGE:
            raise RenderLimitError(f"range() of more than {MAX_RANGE} items is not allowed in a model")

    def __iter__(self):
        for i, value in enumerate(self._range):
            if not i & 255:
                check_deadline()
            yield value

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: int) -> int:
        return self._range[index]


class DbtSandbox(SandboxedEnvironment):
    # `'x' * 10**10` would allocate before the output cap could look at it
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise RenderLimitError("exponents above 64 are not allowed in a model")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT_CHARS:
                    raise RenderLimitError(f"the result would be larger than {MAX_OUTPUT_CHARS:,} items")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        check_deadline()
        return super().call(__context, __obj, *args, **kwargs)


def make_environment() -> DbtSandbox:
    env = DbtSandbox(
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["range"] = LimitedRange
    return env


def render(template: jinja2.Template, context: dict[str, Any] | None = None) -> str:
    """Render with the deadline and the output cap."""
    previous = _limits.deadline
    _limits.deadline = time.monotonic() + MAX_RENDER_SECONDS
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(context or {}):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimitError(f"the rendered SQL is larger than {MAX_OUTPUT_CHARS:,} characters")
            parts.append(chunk)
            check_deadline()
        return "".join(parts)
    finally:
        _limits.deadline = previous
