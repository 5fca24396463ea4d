"""Where a model's files are in a commit, and the file edits of a save, a rename or a delete.

A model is `<name>.sql` somewhere under models/ plus its entry in a properties file: by the
portal's convention `<name>.yml` next to the SQL, or, in a project adopted from engineers, wherever
the entry already is (`models/staging/_staging.yml`), which is kept. Works on any object with the
`Snapshot` interface (entry, read, tree, walk); no Django, no git commands of its own.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ModelVersion
from .git_store import names
from .project_files import ModelSpec, ProjectFileError, parse_properties
from .yml_edit import model_entries, set_entry

MODELS = names.MODELS_DIR
PROPS = (".yml", ".yaml")


@dataclass
class Located:
    name: str
    sql_path: str | None
    yml_path: str | None  # the file holding the entry, if any
    yml_text: str | None
    spec: ModelSpec | None


def _is_props(path: str) -> bool:
    return path.endswith(PROPS)


def find_sql(snap: Any, name: str, hints: tuple[str, ...] = ()) -> str | None:
    """The path of `<name>.sql` under models/: hinted paths first, then models/<name>.sql, then a search."""
    filename = f"{name}.sql"
    for path in (*hints, f"{MODELS}/{filename}"):
        if path and path.endswith("/" + filename) and path.startswith(MODELS + "/") and snap.entry(path) is not None:
            return path
    queue = [MODELS]
    while queue:
        folder = queue.pop(0)
        tree = snap.tree(folder)
        if tree is None:
            continue
        entry = tree.get(filename)
        if entry is not None and not entry.is_tree:
            return f"{folder}/{filename}"
        queue.extend(f"{folder}/{sub}" for sub in tree.subtree_names())
    return None


def _entry_in(snap: Any, path: str, name: str) -> tuple[str, ModelSpec] | None:
    text = snap.text(path)
    if text is None:
        return None
    try:
        props = parse_properties(text, path)
    except ProjectFileError:
        return None
    for spec in props.models:
        if spec.name == name:
            return text, spec
    return None


def _shared_props(snap: Any, folder: str) -> list[str]:
    """Properties files in `folder` not named after a model there (_staging.yml, schema.yml)."""
    tree = snap.tree(folder)
    if tree is None:
        return []
    files = tree.file_names()
    props = [f for f in files if f.endswith(PROPS)]
    if not props:
        return []
    stems = {f[:-4] for f in files if f.endswith(".sql")}
    return [f"{folder}/{f}" for f in props if f.rsplit(".", 1)[0] not in stems]


def locate(snap: Any, name: str, hints: tuple[str, ...] = ()) -> Located:
    """Find a model's SQL and properties entry; either may be missing (a new model, or SQL without yml).

    Cheapest first: hinted files, `<name>.yml` next to the SQL, the folder's shared properties
    files, and only then every shared properties file under models/.
    """
    sql_path = find_sql(snap, name, tuple(h for h in hints if h.endswith(".sql")))
    folder = sql_path.rpartition("/")[0] if sql_path else MODELS
    seen: set[str] = set()

    def check(paths: Any) -> Located | None:
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            found = _entry_in(snap, path, name)
            if found:
                return Located(name, sql_path, path, found[0], found[1])
        return None

    own = [h for h in hints if _is_props(h)] + [f"{folder}/{name}{suffix}" for suffix in PROPS]
    hit = check(own) or check(_shared_props(snap, folder))
    if hit:
        return hit
    queue = [MODELS]
    while queue:
        current = queue.pop(0)
        hit = check(_shared_props(snap, current))
        if hit:
            return hit
        tree = snap.tree(current)
        if tree is not None:
            queue.extend(f"{current}/{sub}" for sub in tree.subtree_names())
    return Located(name, sql_path, None, None, None)


def version(snap: Any, name: str, hints: tuple[str, ...] = ()) -> ModelVersion | None:
    """The model at this snapshot, or None when it has no SQL file there."""
    if snap.commit is None:
        return None
    found = locate(snap, name, hints)
    if found.sql_path is None:
        return None
    return ModelVersion(
        name=name, commit=snap.commit, sql=snap.text(found.sql_path) or "",
        spec=found.spec or ModelSpec(name=name), sql_path=found.sql_path, yml_path=found.yml_path,
        sql_blob=snap.blob_id(found.sql_path) or "",
        yml_blob=(snap.blob_id(found.yml_path) or "") if found.yml_path else "",
    )


def fingerprint(v: ModelVersion | None) -> tuple[str, Any] | None:
    """What identifies a model's content: its SQL blob and its properties entry (not the whole yml)."""
    if v is None:
        return None
    return v.sql_blob, v.spec.to_yaml() if v.spec else None


# --------------------------------------------------------------------------- edits


def merged_spec(old: ModelSpec | None, new: ModelSpec) -> ModelSpec:
    """The form edits description, columns and tests; keep config and extra keys it did not send."""
    if old is None:
        return new
    columns = []
    before = {c.name: c for c in old.columns}
    for col in new.columns:
        prev = before.get(col.name)
        if prev is not None:
            col = replace(col, extra={**prev.extra, **col.extra}, data_type=col.data_type or prev.data_type)
        columns.append(col)
    return replace(new, columns=columns, config={**old.config, **new.config}, extra={**old.extra, **new.extra})


def save_files(snap: Any, name: str, sql: str, spec: ModelSpec, *, folder: str | None = None,
               hints: tuple[str, ...] = ()) -> tuple[dict[str, bytes | None], Located]:
    """The files a save writes: the SQL and the properties file holding the model's entry."""
    names.model_name(name)
    found = locate(snap, name, hints)
    sql_path = found.sql_path
    if sql_path is None:
        sql_path = names.model_path(f"{MODELS}/{folder.rstrip('/')}/{name}.sql" if folder else f"{MODELS}/{name}.sql")
    names.model_path(sql_path)
    yml_path = found.yml_path or f"{sql_path[:-4]}.yml"
    names.model_path(yml_path)
    existing_text = found.yml_text if found.yml_path else snap.text(yml_path)
    new_text = set_entry(existing_text, yml_path, name, spec)
    files: dict[str, bytes | None] = {sql_path: _normal(sql).encode("utf-8")}
    files[yml_path] = new_text.encode("utf-8") if new_text is not None else None
    return files, found


def delete_files(snap: Any, name: str, hints: tuple[str, ...] = ()) -> tuple[dict[str, bytes | None], Located]:
    found = locate(snap, name, hints)
    files: dict[str, bytes | None] = {}
    if found.sql_path:
        files[names.model_path(found.sql_path)] = None
    if found.yml_path:
        new_text = set_entry(found.yml_text, found.yml_path, name, None)
        files[names.model_path(found.yml_path)] = new_text.encode("utf-8") if new_text is not None else None
    return files, found


def rename_files(snap: Any, old: str, new: str, hints: tuple[str, ...] = ()) -> tuple[dict[str, bytes | None], Located]:
    """Move <old>.sql to <new>.sql in the same folder and rename its properties entry."""
    names.model_name(new)
    found = locate(snap, old, hints)
    if found.sql_path is None:
        return {}, found
    folder = found.sql_path.rpartition("/")[0]
    new_sql = names.model_path(f"{folder}/{new}.sql")
    files: dict[str, bytes | None] = {names.model_path(found.sql_path): None, new_sql: snap.read(found.sql_path)}
    spec = replace(found.spec or ModelSpec(name=old), name=new)
    own_file = found.yml_path and found.yml_path.rsplit("/", 1)[-1].rsplit(".", 1)[0] == old
    if found.yml_path and not own_file:
        # a shared file: rename the entry where it is
        without = set_entry(found.yml_text, found.yml_path, old, None) or ""
        files[found.yml_path] = (set_entry(without, found.yml_path, new, spec) or "").encode("utf-8")
    else:
        if found.yml_path:
            rest = set_entry(found.yml_text, found.yml_path, old, None)
            files[names.model_path(found.yml_path)] = rest.encode("utf-8") if rest is not None else None
        target = names.model_path(f"{folder}/{new}.yml")
        text = set_entry(snap.text(target), target, new, spec) if found.spec is not None else None
        if text is not None:
            files[target] = text.encode("utf-8")
    return files, found


def _normal(sql: str) -> str:
    sql = sql.replace("\r\n", "\n").replace("\r", "\n")
    return sql if sql.endswith("\n") or not sql else sql + "\n"


# --------------------------------------------------------------------------- messages and diffs


def describe_save(name: str, before: ModelVersion | None, sql: str, spec: ModelSpec) -> str:
    """A commit message an analyst would write: 'Update orders: description, 2 columns'."""
    if before is None:
        return f"Add {name}"
    parts = []
    if before.sql != _normal(sql):
        parts.append("SQL")
    old = before.spec or ModelSpec(name=name)
    if old.description != spec.description:
        parts.append("description")
    old_cols = {c.name: c.to_yaml() for c in old.columns}
    new_cols = {c.name: c.to_yaml() for c in spec.columns}
    changed = sum(1 for n in old_cols.keys() | new_cols.keys() if old_cols.get(n) != new_cols.get(n))
    if changed:
        parts.append(f"{changed} column{'s' if changed != 1 else ''}")
    elif list(old_cols) != list(new_cols):
        parts.append("column order")
    if [t.to_yaml() for t in old.tests] != [t.to_yaml() for t in spec.tests]:
        parts.append("tests")
    if old.config != spec.config:
        parts.append("config")
    if old.extra != spec.extra:
        parts.append("properties")
    return f"Update {name}: {', '.join(parts)}" if parts else f"Update {name}"


@dataclass
class ModelDiff:
    """One model's change between two commits, for the change page and the history page."""

    name: str
    status: str  # added | modified | deleted | renamed
    old_name: str | None = None
    sql_before: str = ""
    sql_after: str = ""
    properties_before: str = ""
    properties_after: str = ""
    sql_diff: str = ""
    properties_diff: str = ""
    paths: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _props_text(v: ModelVersion | None) -> str:
    if v is None or v.spec is None:
        return ""
    from .project_files import dump_yaml

    return dump_yaml(v.spec.to_yaml())


def unified(before: str, after: str, label: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"a/{label}", tofile=f"b/{label}", n=3)
    return "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)


def model_diff(name: str, before: ModelVersion | None, after: ModelVersion | None,
               old_name: str | None = None) -> ModelDiff | None:
    if fingerprint(before) == fingerprint(after):
        return None
    status = "added" if before is None else "deleted" if after is None else "renamed" if old_name else "modified"
    d = ModelDiff(name=name, status=status, old_name=old_name,
                  sql_before=before.sql if before else "", sql_after=after.sql if after else "",
                  properties_before=_props_text(before), properties_after=_props_text(after))
    d.sql_diff = unified(d.sql_before, d.sql_after, f"{name}.sql")
    d.properties_diff = unified(d.properties_before, d.properties_after, f"{name}.yml")
    d.paths = sorted({p for v in (before, after) if v for p in (v.sql_path, v.yml_path) if p})
    return d


def affected_models(old_snap: Any, new_snap: Any, paths: list[str]) -> set[str]:
    """Model names whose SQL or properties entry may differ, given the paths that changed."""
    affected: set[str] = set()
    for path in paths:
        if not path.startswith(MODELS + "/"):
            continue
        if path.endswith(".sql"):
            affected.add(path.rsplit("/", 1)[-1][:-4])
        elif _is_props(path):
            try:
                before = model_entries(old_snap.text(path) if old_snap.commit else None, path)
                after = model_entries(new_snap.text(path), path)
            except ProjectFileError:
                continue
            affected |= {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    return {n for n in affected if names.is_identifier(n)}
