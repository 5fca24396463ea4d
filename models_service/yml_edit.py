"""Editing one model's entry in a properties file (models/**.yml) without disturbing the rest of it.

Engineers keep several models, sources and comments in one file (`_staging.yml`). Re-dumping the
whole file after an analyst edits one model would rewrite every other entry and drop every comment,
so the entry's lines are located with PyYAML's composer and only they are replaced. The result is
parsed again and compared with what was intended; if a layout defeats the splice (flow style,
anchors, odd indentation), the file is dumped whole instead: correct first, tidy second.
Plain Python (no Django, no git).
"""

from __future__ import annotations

from typing import Any

import yaml

from .project_files import ModelSpec, ProjectFileError, dump_properties, dump_yaml, load_yaml

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def model_entries(text: str | None, path: str) -> dict[str, dict[str, Any]]:
    """{name: raw mapping} of the `models:` list in a properties file."""
    if not text:
        return {}
    data = load_yaml(text, path) or {}
    if not isinstance(data, dict):
        raise ProjectFileError(path, "must be a mapping with models:, seeds: or sources:")
    out = {}
    for node in data.get("models") or []:
        if isinstance(node, dict) and node.get("name"):
            out[str(node["name"])] = node
    return out


def set_entry(text: str | None, path: str, name: str, spec: ModelSpec | dict[str, Any] | None) -> str | None:
    """The file's text with model `name` set to `spec` (added if missing) or removed (spec None).

    `spec` may also be the entry as a raw mapping (as read from another version of the file).
    Returns None when the file has nothing left in it (the caller deletes it).
    """
    entry = spec.to_yaml() if isinstance(spec, ModelSpec) else spec
    data = (load_yaml(text, path) or {}) if text and text.strip() else {}
    if not isinstance(data, dict):
        raise ProjectFileError(path, "must be a mapping with models:, seeds: or sources:")
    models = [m for m in (data.get("models") or []) if isinstance(m, dict)]
    others = [m for m in models if str(m.get("name")) != name]
    expected = dict(data)
    if entry is None:
        expected["models"] = others
    else:
        index = next((i for i, m in enumerate(models) if str(m.get("name")) == name), None)
        expected["models"] = (models[:index] + [entry] + models[index + 1:]) if index is not None else models + [entry]

    if set(data) <= {"version", "models"} and not others:
        # The model's own file: write it whole, in the house format.
        if entry is None:
            return None
        return dump_properties([spec]) if isinstance(spec, ModelSpec) else dump_yaml({"version": 2, "models": [entry]})
    try:
        spliced = _splice(text or "", name, entry)
    except (ValueError, yaml.YAMLError):
        spliced = None
    if spliced is not None and _same(spliced, path, expected):
        return spliced
    if entry is None and not expected["models"] and set(expected) <= {"version", "models"}:
        return None
    return dump_yaml(expected)


def _same(text: str, path: str, expected: dict[str, Any]) -> bool:
    try:
        got = load_yaml(text, path) or {}
    except ProjectFileError:
        return False
    if not isinstance(got, dict):
        return False
    want = dict(expected)
    if not want.get("models"):
        want.pop("models", None)
        got = {k: v for k, v in got.items() if not (k == "models" and not v)}
    return got == want


def _splice(text: str, name: str, entry: dict[str, Any] | None) -> str | None:
    root = yaml.compose(text, Loader=_Loader)
    if not isinstance(root, yaml.MappingNode):
        return None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    models_key = next((k for k, _ in root.value if isinstance(k, yaml.ScalarNode) and k.value == "models"), None)
    seq = next((v for k, v in root.value if k is models_key), None) if models_key is not None else None

    if seq is None:
        if entry is None:
            return text
        block = "models:\n" + _indent(dump_yaml([entry]), 2)
        return "".join(lines) + block
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style:
        return None
    items = list(seq.value)
    found = None
    for i, item in enumerate(items):
        if isinstance(item, yaml.MappingNode):
            for k, v in item.value:
                if isinstance(k, yaml.ScalarNode) and k.value == "name" and isinstance(v, yaml.ScalarNode) \
                        and v.value == name:
                    found = i
    if found is None:
        if entry is None:
            return text
        if not items:
            return None
        last_start, last_end = _item_lines(lines, items, len(items) - 1, seq)
        dash_col = _dash_column(lines, items[-1])
        insert = _indent(dump_yaml([entry]), dash_col)
        return "".join(lines[:last_end] + [insert] + lines[last_end:])
    start, end = _item_lines(lines, items, found, seq)
    if entry is None:
        if len(items) == 1:
            return None  # leave an empty `models:` to the fallback, which drops the key cleanly
        return "".join(lines[:start] + lines[end:])
    dash_col = _dash_column(lines, items[found])
    return "".join(lines[:start] + [_indent(dump_yaml([entry]), dash_col)] + lines[end:])


def _item_lines(lines: list[str], items: list[yaml.Node], index: int, seq: yaml.Node) -> tuple[int, int]:
    """[first, last) line numbers of a sequence item, from its dash to before the next item or key."""
    start = _dash_line(lines, items[index])
    end = _dash_line(lines, items[index + 1]) if index + 1 < len(items) else seq.end_mark.line
    if index + 1 >= len(items) and seq.end_mark.column > 0 and seq.end_mark.line < len(lines) \
            and lines[seq.end_mark.line][: seq.end_mark.column].strip():
        end = seq.end_mark.line + 1
    end = min(end, len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # blank lines and comments after an item belong to what follows
    return start, end


def _dash_line(lines: list[str], item: yaml.Node) -> int:
    line, col = item.start_mark.line, item.start_mark.column
    while line >= 0:
        before = lines[line][:col] if col is not None else lines[line]
        stripped = before.rstrip()
        if stripped.endswith("-"):
            return line
        if stripped.strip():
            raise ValueError("sequence item without a dash before it")
        line, col = line - 1, None
    raise ValueError("no dash found")


def _dash_column(lines: list[str], item: yaml.Node) -> int:
    line = _dash_line(lines, item)
    text = lines[line]
    col = item.start_mark.column if line == item.start_mark.line else len(text.rstrip())
    return text[:col].rstrip().rindex("-")


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + ln if ln.strip() else ln for ln in block.splitlines(keepends=True))
