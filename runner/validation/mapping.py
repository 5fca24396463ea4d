"""Positions through Jinja: where a character of the rendered SQL came from in the analyst's text.

Before rendering, every stretch of plain text between Jinja tags gets invisible markers (at its start,
after each newline, and at its end) that carry their offset in the source. Jinja copies plain text
verbatim, markers included, so after rendering the markers say, for every character of the output,
either "this is source offset N + k" (copied text) or "this was produced by the tag at N" (the output
of `{{ ... }}`, a macro, a loop). The markers are removed before the SQL is checked, and never add a
line, so Jinja's own line numbers stay right too.

Whitespace control (`{%-`, `-%}`) is kept: a marker never sits in whitespace that a tag strips.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

OPEN, CLOSE = "\x01", "\x02"  # not whitespace for str.strip, so Jinja's trimming never eats a marker
MARK_RE = re.compile("\x01(e?)(\\d+)\x02")
OPENER_RE = re.compile(r"\{[{%#]")
RAW_RE = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
DATA, GENERATED = 0, 1


@dataclass(frozen=True)
class Tag:
    start: int
    end: int  # exclusive; len(text) for a tag that is never closed
    kind: str  # "{{", "{%" or "{#"
    strip_before: bool  # `{%-`: trims the whitespace in front
    strip_after: bool  # `-%}`: trims the whitespace after
    closed: bool = True


def scan_tags(text: str) -> list[Tag]:
    """The Jinja tags of a text, as Jinja's lexer sees them (strings inside tags can hold `}}`)."""
    tags: list[Tag] = []
    pos, n = 0, len(text)
    while True:
        m = OPENER_RE.search(text, pos)
        if m is None:
            return tags
        start, kind = m.start(), m.group()
        closer = CLOSERS[kind]
        k = start + 2
        strip_before = text[k:k + 1] == "-"
        if kind == "{#":
            end = text.find("#}", k)
        else:
            end = -1
            while k < n:
                ch = text[k]
                if ch in "'\"":
                    k += 1
                    while k < n and text[k] != ch:
                        k += 2 if text[k] == "\\" else 1
                elif text.startswith(closer, k):
                    end = k
                    break
                k += 1
        if end < 0:
            tags.append(Tag(start, n, kind, strip_before, False, closed=False))
            return tags
        tag = Tag(start, end + 2, kind, strip_before, text[end - 1:end] == "-" and end - 1 > start + 2)
        tags.append(tag)
        pos = tag.end
        if kind == "{%" and RAW_RE.fullmatch(text, tag.start, tag.end):
            endraw = ENDRAW_RE.search(text, pos)  # what is between is plain text to Jinja
            if endraw is None:
                return tags
            close = text[endraw.start():endraw.end()]
            tags.append(Tag(endraw.start(), endraw.end(), "{%", close[2:3] == "-", close[-3:-2] == "-"))
            pos = endraw.end()


@dataclass
class SourceMap:
    """Maps offsets of the rendered SQL back to the analyst's text, and offsets to line/column."""

    source: str
    output: str
    anchors: list[tuple[int, int, int]] = field(default_factory=list)  # (output offset, source offset, kind)
    tags: dict[int, Tag] = field(default_factory=dict)  # by start offset

    def __post_init__(self) -> None:
        self._outs = [a[0] for a in self.anchors]
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.source) if ch == "\n"]
        self._out_line_starts: list[int] | None = None

    @classmethod
    def identity(cls, text: str) -> SourceMap:
        return cls(text, text, [(0, 0, DATA)])

    def _anchor(self, out: int) -> tuple[int, int, int] | None:
        i = bisect.bisect_right(self._outs, out) - 1
        return self.anchors[i] if i >= 0 else None

    def char(self, out: int) -> tuple[int, int, bool]:
        """(source start, source end, exact) of the output character at `out`."""
        anchor = self._anchor(out)
        if anchor is None:
            return 0, 0, False
        out0, src0, kind = anchor
        if kind == DATA:
            src = min(src0 + out - out0, len(self.source))
            return src, min(src + 1, len(self.source)), True
        tag = self.tags.get(src0)
        return (tag.start, tag.end, False) if tag else (src0, src0, False)

    def span(self, out_start: int, out_end: int) -> tuple[int, int, bool]:
        """Source span of the output span [out_start, out_end); exact when it was copied verbatim."""
        out_end = max(out_end, out_start + 1)
        a_start, a_end, a_exact = self.char(out_start)
        b_start, b_end, b_exact = self.char(out_end - 1)
        exact = (a_exact and b_exact and self._anchor(out_start) == self._anchor(out_end - 1)
                 and self.source[a_start:b_end] == self.output[out_start:out_end])
        return a_start, max(a_end, b_end), exact

    def position(self, src: int) -> tuple[int, int]:
        """1-based (line, column) of a source offset."""
        line = bisect.bisect_right(self._line_starts, src) - 1
        return line + 1, src - self._line_starts[line] + 1

    def out_offset(self, line: int, column: int) -> int:
        """Output offset of a 1-based (line, column) of the rendered SQL."""
        if self._out_line_starts is None:
            self._out_line_starts = [0] + [i + 1 for i, ch in enumerate(self.output) if ch == "\n"]
        starts = self._out_line_starts
        line = min(max(line, 1), len(starts))
        return min(starts[line - 1] + max(column, 1) - 1, len(self.output))

    def line_span(self, line: int) -> tuple[int, int]:
        """Source offsets of a whole source line (without its newline)."""
        line = min(max(line, 1), len(self._line_starts))
        start = self._line_starts[line - 1]
        end = self.source.find("\n", start)
        return start, end if end >= 0 else len(self.source)


def instrument(text: str, tags: list[Tag]) -> str:
    """The template with position markers in every stretch of plain text."""
    parts: list[str] = []
    bounds = [0] + [x for t in tags for x in (t.start, t.end)] + [len(text)]
    for i in range(0, len(bounds), 2):
        start, end = bounds[i], bounds[i + 1]
        before = tags[i // 2 - 1] if i else None
        after = tags[i // 2] if i // 2 < len(tags) else None
        lo, hi = start, end
        if before is not None and before.strip_after:
            while lo < hi and text[lo].isspace():
                lo += 1
        if after is not None and after.strip_before:
            while hi > lo and text[hi - 1].isspace():
                hi -= 1
        parts.append(text[start:lo])
        parts.append(f"{OPEN}{lo}{CLOSE}")
        pos = lo
        while True:
            nl = text.find("\n", pos, hi)
            if nl < 0 or nl + 1 >= hi:
                break
            parts.append(text[pos:nl + 1])
            parts.append(f"{OPEN}{nl + 1}{CLOSE}")
            pos = nl + 1
        parts.append(text[pos:hi])
        if after is not None:
            parts.append(f"{OPEN}e{after.start}{CLOSE}")
        parts.append(text[hi:end])
        if after is not None:
            parts.append(text[after.start:after.end])
    return "".join(parts)


def strip_markers(source: str, rendered: str, tags: list[Tag]) -> SourceMap:
    """The rendered SQL without markers, and the map of its offsets to the source."""
    out: list[str] = []
    anchors: list[tuple[int, int, int]] = []
    pos = size = 0
    for m in MARK_RE.finditer(rendered):
        piece = rendered[pos:m.start()]
        out.append(piece)
        size += len(piece)
        anchor = (size, int(m.group(2)), GENERATED if m.group(1) else DATA)
        if anchors and anchors[-1][0] == size:
            anchors[-1] = anchor  # nothing between two markers: the later one speaks for what follows
        else:
            anchors.append(anchor)
        pos = m.end()
    out.append(rendered[pos:])
    return SourceMap(source, "".join(out), anchors, {t.start: t for t in tags})
