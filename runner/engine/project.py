"""Load a dbt project from any file source into nodes: models, seeds, tests, sources, macros, docs.

Nothing here renders Jinja or touches a warehouse; `compiler` does the first, `execution` the second.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from models_service.project_files import (
    ColumnSpec,
    ModelSpec,
    ProjectConfig,
    TestSpec,
    parse_project_file,
    parse_properties,
)

from .errors import ProjectError

SKIP_DIRS = {".git", "target", "dbt_packages", "logs", "node_modules", "__pycache__", ".venv"}
CONFIG_KEYS = {
    "materialized", "schema", "alias", "tags", "enabled", "unique_key", "full_refresh", "severity",
    "where", "warn_if", "error_if", "column_types", "quote_columns", "meta", "docs", "persist_docs",
    "incremental_strategy", "on_schema_change", "database", "pre-hook", "post-hook", "grants", "owner",
    "contract", "delimiter", "limit", "store_failures", "group", "access",
}
DOCS_RE = re.compile(r"{%-?\s*docs\s+([A-Za-z_]\w*)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.S)
TEST_REF_RE = re.compile(r"""^\s*(?:\{\{\s*)?ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)(?:\s*\}\})?\s*$""")
TEST_SOURCE_RE = re.compile(
    r"""^\s*(?:\{\{\s*)?source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)(?:\s*\}\})?\s*$"""
)


class FileSource(Protocol):
    """Where a project's files come from: a directory, or the files of a git tree."""

    def list_files(self) -> list[str]: ...

    def read(self, path: str) -> str: ...


class DirectorySource:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = os.fspath(root)

    def list_files(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            rel = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return out

    def read(self, path: str) -> str:
        with open(os.path.join(self.root, path), encoding="utf-8-sig") as fh:
            return fh.read()


class MappingSource:
    """Files handed over in memory (e.g. read from a git tree): {path: text}."""

    def __init__(self, files: dict[str, str]):
        self.files = files

    def list_files(self) -> list[str]:
        return sorted(self.files)

    def read(self, path: str) -> str:
        return self.files[path]


@dataclass
class TestInfo:
    kind: str  # unique | not_null | accepted_values | relationships | singular
    model: str | None = None  # the node the test is attached to (model/seed name, or source.table)
    attached_uid: str | None = None
    column: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    to_uid: str | None = None  # relationships: the parent relation's node


@dataclass
class Node:
    unique_id: str
    resource_type: str  # model | seed | test
    name: str
    path: str
    raw_code: str
    fqn: list[str]
    config: dict[str, Any]
    description: str = ""
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    patch_path: str | None = None
    test: TestInfo | None = None
    depends_on: list[str] = field(default_factory=list)  # unique ids, filled by the compiler for models
    refs: list[tuple[str | None, str]] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)

    @property
    def materialized(self) -> str:
        return self.config.get("materialized") or "view"

    @property
    def tags(self) -> list[str]:
        return list(self.config.get("tags") or [])


@dataclass
class Source:
    unique_id: str
    source_name: str
    name: str
    schema: str
    identifier: str
    description: str = ""
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    path: str = ""


@dataclass
class Project:
    config: ProjectConfig
    nodes: dict[str, Node]
    sources: dict[str, Source]
    macro_files: dict[str, str]
    docs: dict[str, str]
    cli_vars: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def model_uid(self, name: str) -> str | None:
        for kind in ("model", "seed"):
            uid = f"{kind}.{self.name}.{name}"
            if uid in self.nodes:
                return uid
        return None

    def source_uid(self, source_name: str, table: str) -> str | None:
        uid = f"source.{self.name}.{source_name}.{table}"
        return uid if uid in self.sources else None

    def var(self, name: str, default: Any = None, has_default: bool = False) -> Any:
        if name in self.cli_vars:
            return self.cli_vars[name]
        scoped = self.config.vars.get(self.name)
        if isinstance(scoped, dict) and name in scoped:
            return scoped[name]
        if name in self.config.vars:
            return self.config.vars[name]
        if has_default:
            return default
        raise KeyError(name)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def merge_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """dbt's config merge: later wins, tags add up."""
    out = dict(base)
    for key, value in extra.items():
        key = key.lstrip("+")
        if key == "tags":
            tags = list(out.get("tags") or [])
            tags += [t for t in _as_list(value) if t not in tags]
            out["tags"] = tags
        elif key in ("meta",) and isinstance(value, dict):
            out[key] = {**(out.get(key) or {}), **value}
        else:
            out[key] = value
    return out


def tree_config(tree: dict[str, Any], fqn: list[str]) -> dict[str, Any]:
    """Config from a dbt_project.yml tree (`models:`, `seeds:`) for the node at `fqn`."""

    def own(level: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v for k, v in level.items()
            if k.startswith("+") or (k in CONFIG_KEYS and not isinstance(v, dict)) or k in ("column_types",)
        }

    config = merge_config({}, own(tree))
    level: Any = tree
    for part in fqn:
        if not isinstance(level, dict) or not isinstance(level.get(part), dict):
            break
        level = level[part]
        config = merge_config(config, own(level))
    return config


def _within(path: str, roots: list[str]) -> str | None:
    for root in roots:
        if path.startswith(root + "/"):
            return root
    return None


def load_project(source: FileSource | str | os.PathLike[str], cli_vars: dict[str, Any] | None = None) -> Project:
    """Read every file of a project and turn it into nodes. Raises ProjectError naming the file."""
    if not hasattr(source, "list_files"):
        source = DirectorySource(source)  # type: ignore[arg-type]
    files = source.list_files()  # type: ignore[union-attr]
    if "dbt_project.yml" not in files:
        raise ProjectError("dbt_project.yml", "is missing", hint="Point --project at the folder that holds it.")
    cfg = parse_project_file(source.read("dbt_project.yml"))  # type: ignore[union-attr]
    project = Project(config=cfg, nodes={}, sources={}, macro_files={}, docs={}, cli_vars=dict(cli_vars or {}))
    props_models: dict[str, ModelSpec] = {}
    props_seeds: dict[str, ModelSpec] = {}

    for path in files:
        if path.endswith((".yml", ".yaml")) and _within(path, cfg.model_paths + cfg.seed_paths):
            props = parse_properties(source.read(path), path)  # type: ignore[union-attr]
            for spec in props.models:
                if spec.name in props_models:
                    raise ProjectError(path, f"model {spec.name} is described twice",
                                       hint=f"Also in {props_models[spec.name].path}; keep one entry.")
                props_models[spec.name] = spec
            for spec in props.seeds:
                props_seeds[spec.name] = spec
            for src in props.sources:
                for tbl in src.tables:
                    uid = f"source.{cfg.name}.{src.name}.{tbl.name}"
                    project.sources[uid] = Source(
                        unique_id=uid, source_name=src.name, name=tbl.name, schema=src.schema,
                        identifier=tbl.identifier, description=tbl.description,
                        columns={c.name: c for c in tbl.columns}, path=path,
                    )
                    _add_tests(project, uid, f"{src.name}.{tbl.name}", tbl.tests, tbl.columns, path, source=True)
        elif path.endswith(".md") and _within(path, cfg.model_paths + cfg.macro_paths):
            for name, body in DOCS_RE.findall(source.read(path)):  # type: ignore[union-attr]
                project.docs[name] = body.strip()
        elif path.endswith(".sql") and _within(path, cfg.macro_paths):
            project.macro_files[path] = source.read(path)  # type: ignore[union-attr]

    for path in files:
        root = _within(path, cfg.model_paths)
        if root and path.endswith(".sql"):
            _add_node(project, "model", root, path, source.read(path), props_models)  # type: ignore[union-attr]
        root = _within(path, cfg.seed_paths)
        if root and path.endswith(".csv"):
            _add_node(project, "seed", root, path, source.read(path), props_seeds)  # type: ignore[union-attr]
        root = _within(path, cfg.test_paths)
        if root and path.endswith(".sql") and "/generic/" not in path:
            _add_singular_test(project, root, path, source.read(path))  # type: ignore[union-attr]

    for name, spec in props_models.items():
        uid = f"model.{cfg.name}.{name}"
        node = project.nodes.get(uid)
        if node is not None:
            _add_tests(project, uid, name, spec.tests, spec.columns, spec.path)
    for name, spec in props_seeds.items():
        uid = f"seed.{cfg.name}.{name}"
        if uid in project.nodes:
            _add_tests(project, uid, name, spec.tests, spec.columns, spec.path)
    return project


def _add_node(project: Project, kind: str, root: str, path: str, text: str, props: dict[str, ModelSpec]) -> None:
    cfg = project.config
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ProjectError(path, f"{kind} name {name!r} is not a valid identifier",
                           hint="Rename the file to letters, digits and underscores.")
    uid = f"{kind}.{cfg.name}.{name}"
    other = project.nodes.get(uid) or project.nodes.get(f"{'seed' if kind == 'model' else 'model'}.{cfg.name}.{name}")
    if other is not None:
        raise ProjectError(path, f"two resources are named {name}", hint=f"The other is {other.path}; rename one.")
    fqn = [cfg.name, *path[len(root) + 1:].split("/")[:-1], name]
    tree = cfg.models if kind == "model" else cfg.seeds
    config = merge_config({"materialized": "view" if kind == "model" else "seed", "enabled": True},
                          tree_config(tree, fqn))
    spec = props.get(name)
    if spec is not None:
        config = merge_config(config, spec.config)
    project.nodes[uid] = Node(
        unique_id=uid, resource_type=kind, name=name, path=path, raw_code=text, fqn=fqn, config=config,
        description=spec.description if spec else "",
        columns={c.name: c for c in spec.columns} if spec else {},
        patch_path=spec.path if spec else None,
    )


def _add_singular_test(project: Project, root: str, path: str, text: str) -> None:
    cfg = project.config
    name = path.rsplit("/", 1)[-1][:-4]
    fqn = [cfg.name, *path[len(root) + 1:].split("/")[:-1], name]
    config = merge_config({"severity": "error", "enabled": True}, tree_config(cfg.tests, fqn))
    uid = f"test.{cfg.name}.{name}"
    project.nodes[uid] = Node(
        unique_id=uid, resource_type="test", name=name, path=path, raw_code=text, fqn=fqn,
        config=config, test=TestInfo(kind="singular"),
    )


def generic_test_name(kind: str, target: str, kwargs: dict[str, Any], source: bool) -> str:
    """dbt's name for a generic test: not_null_orders_order_id, accepted_values_orders_status__a__b."""
    flat: list[str] = []
    for arg in sorted(kwargs):
        if arg == "model":
            continue
        value = kwargs[arg]
        parts = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) else [value]
        flat.extend(str(p) for p in parts)
    unique = "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", a) for a in flat)
    identifier = f"{'source_' if source else ''}{kind}_{target.replace('.', '_')}"
    return f"{identifier}_{unique}"


def test_alias(name: str) -> str:
    """dbt's short alias for a test whose name is 64 characters or more."""
    import hashlib

    return name if len(name) < 64 else f"{name[:30]}_{hashlib.md5(name.encode()).hexdigest()}"


def _add_tests(project: Project, attached_uid: str, target: str, model_tests: Iterable[TestSpec],
               columns: Iterable[ColumnSpec], path: str, source: bool = False) -> None:
    entries = [(None, t) for t in model_tests] + [(c.name, t) for c in columns for t in c.tests]
    for column, spec in entries:
        kwargs = dict(spec.kwargs)
        if column is not None:
            kwargs.setdefault("column_name", column)
        name = generic_test_name(spec.kind, target, kwargs, source)
        uid = f"test.{project.name}.{name}"
        n = 1
        while uid in project.nodes:
            n += 1
            uid = f"test.{project.name}.{name}_{n}"
        fqn = [project.name, name]
        config = merge_config({"severity": "error", "enabled": True}, tree_config(project.config.tests, fqn))
        config = merge_config(config, spec.config)
        info = TestInfo(kind=spec.kind, model=target, attached_uid=attached_uid,
                        column=kwargs.get("column_name"), kwargs=kwargs)
        project.nodes[uid] = Node(
            unique_id=uid, resource_type="test", name=name, path=path, raw_code="", fqn=fqn,
            config=config, test=info, patch_path=path,
        )


def parse_test_target(text: Any) -> tuple[str, tuple[str | None, str] | tuple[str, str]] | None:
    """`to: ref('customers')` or `source('raw', 'x')` in a relationships test."""
    if not isinstance(text, str):
        return None
    m = TEST_REF_RE.match(text)
    if m:
        return ("ref", (m.group(1), m.group(2)) if m.group(2) else (None, m.group(1)))
    m = TEST_SOURCE_RE.match(text)
    if m:
        return ("source", (m.group(1), m.group(2)))
    return None
