"""The dbt project's file formats, defined once (plain Python, no Django).

The git store writes a project through these functions and the engine reads it through them, so what
the portal writes is what the engine (and dbt-core) reads. Names that reach the warehouse or the file
system are validated here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C loader is ~10x faster; fall back where libyaml is missing
    _Loader = yaml.CSafeLoader
    _Dumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")  # \Z: "$" would also accept a trailing newline
GENERIC_TESTS = ("unique", "not_null", "accepted_values", "relationships")
DEFAULT_PATHS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
}


class ProjectFileError(ValueError):
    """A project file that cannot be read: names the file, the line where known, and what to do."""

    def __init__(self, path: str, message: str, line: int | None = None, hint: str = ""):
        self.path, self.message, self.line, self.hint = path, message, line, hint
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}" + (f" {hint}" if hint else ""))


def validate_name(name: Any, what: str = "model") -> str:
    """A model, seed, source or column name the server accepts: lower-case identifier, 63 chars at most."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(
            f"{what} name {name!r} is not allowed: use lower-case letters, digits and underscores, "
            "start with a letter, 63 characters at most (for example: orders_by_month)"
        )
    return name


def load_yaml(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProjectFileError(
            path, f"is not valid YAML ({problem})", mark.line + 1 if mark else None,
            "Check the indentation and the colons on that line.",
        ) from None


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# --------------------------------------------------------------------------- properties (models/*.yml)


@dataclass
class TestSpec:
    """One generic test on a model or column: kind (unique, not_null, ...), its arguments and config."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> Any:
        if not self.kwargs and not self.config:
            return self.kind
        body: dict[str, Any] = dict(self.kwargs)
        if self.config:
            body["config"] = dict(self.config)
        return {self.kind: body}


@dataclass
class ColumnSpec:
    name: str
    description: str = ""
    data_type: str | None = None
    tests: list[TestSpec] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.data_type:
            out["data_type"] = self.data_type
        out.update(self.extra)
        if self.tests:
            out["data_tests"] = [t.to_yaml() for t in self.tests]
        return out


@dataclass
class ModelSpec:
    """A model's (or seed's) properties: what the editor's form shows and what the yml holds."""

    name: str
    description: str = ""
    columns: list[ColumnSpec] = field(default_factory=list)
    tests: list[TestSpec] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.config:
            out["config"] = dict(self.config)
        out.update(self.extra)
        if self.tests:
            out["data_tests"] = [t.to_yaml() for t in self.tests]
        if self.columns:
            out["columns"] = [c.to_yaml() for c in self.columns]
        return out


@dataclass
class SourceTableSpec:
    name: str
    identifier: str
    description: str = ""
    columns: list[ColumnSpec] = field(default_factory=list)
    tests: list[TestSpec] = field(default_factory=list)


@dataclass
class SourceSpec:
    name: str
    schema: str
    description: str = ""
    tables: list[SourceTableSpec] = field(default_factory=list)
    path: str = ""


@dataclass
class Properties:
    models: list[ModelSpec] = field(default_factory=list)
    seeds: list[ModelSpec] = field(default_factory=list)
    sources: list[SourceSpec] = field(default_factory=list)


def parse_test(entry: Any, path: str, owner: str) -> TestSpec:
    """One entry of a `tests:`/`data_tests:` list, in any of dbt's spellings."""
    if isinstance(entry, str):
        return TestSpec(kind=entry)
    if isinstance(entry, dict) and len(entry) == 1:
        kind, body = next(iter(entry.items()))
        body = dict(body or {})
        config = dict(body.pop("config", None) or {})
        for key in ("severity", "where", "warn_if", "error_if", "enabled", "tags", "limit", "store_failures"):
            if key in body:
                config[key] = body.pop(key)
        kwargs = dict(body.pop("arguments", None) or {})  # dbt >= 1.10 nests arguments
        kwargs.update(body)
        kwargs.pop("name", None)
        return TestSpec(kind=str(kind), kwargs=kwargs, config=config)
    raise ProjectFileError(
        path, f"a test on {owner} is not understood: {entry!r}",
        hint="Write a test as a name (unique) or as a mapping (accepted_values: {values: [...]}).",
    )


def _tests(node: dict[str, Any], path: str, owner: str) -> list[TestSpec]:
    entries = list(node.get("data_tests") or []) + list(node.get("tests") or [])
    return [parse_test(e, path, owner) for e in entries]


def _columns(node: dict[str, Any], path: str, owner: str) -> list[ColumnSpec]:
    columns = []
    for col in node.get("columns") or []:
        if not isinstance(col, dict) or "name" not in col:
            raise ProjectFileError(path, f"a column of {owner} has no name", hint="Give every column a name:.")
        extra = {k: v for k, v in col.items() if k not in ("name", "description", "data_type", "tests", "data_tests")}
        columns.append(
            ColumnSpec(
                name=str(col["name"]),
                description=str(col.get("description") or ""),
                data_type=col.get("data_type"),
                tests=_tests(col, path, f"{owner}.{col['name']}"),
                extra=extra,
            )
        )
    return columns


def _model_spec(node: Any, path: str, kind: str) -> ModelSpec:
    if not isinstance(node, dict) or not node.get("name"):
        raise ProjectFileError(path, f"an entry under {kind}: has no name", hint="Start each entry with name:.")
    name = str(node["name"])
    known = ("name", "description", "columns", "tests", "data_tests", "config")
    return ModelSpec(
        name=name,
        description=str(node.get("description") or ""),
        columns=_columns(node, path, name),
        tests=_tests(node, path, name),
        config=dict(node.get("config") or {}),
        extra={k: v for k, v in node.items() if k not in known},
        path=path,
    )


def model_spec(node: Any, where: str = "request") -> ModelSpec:
    """A model's properties from a yml-shaped mapping (the API's body): name, description, columns
    with their tests, model tests, config. ProjectFileError (naming `where`) when it is not one."""
    return _model_spec(node, where, "models")


def parse_properties(text: str, path: str) -> Properties:
    """A properties file (models/**.yml): models, seeds and sources with their columns and tests."""
    data = load_yaml(text, path) or {}
    if not isinstance(data, dict):
        raise ProjectFileError(path, "must be a mapping with models:, seeds: or sources:")
    props = Properties()
    for node in data.get("models") or []:
        props.models.append(_model_spec(node, path, "models"))
    for node in data.get("seeds") or []:
        props.seeds.append(_model_spec(node, path, "seeds"))
    for src in data.get("sources") or []:
        if not isinstance(src, dict) or not src.get("name"):
            raise ProjectFileError(path, "a source has no name", hint="Start each source with name:.")
        tables = []
        for tbl in src.get("tables") or []:
            if not isinstance(tbl, dict) or not tbl.get("name"):
                raise ProjectFileError(path, f"a table of source {src['name']} has no name")
            tname = str(tbl["name"])
            tables.append(
                SourceTableSpec(
                    name=tname,
                    identifier=str(tbl.get("identifier") or tname),
                    description=str(tbl.get("description") or ""),
                    columns=_columns(tbl, path, f"{src['name']}.{tname}"),
                    tests=_tests(tbl, path, f"{src['name']}.{tname}"),
                )
            )
        props.sources.append(
            SourceSpec(
                name=str(src["name"]),
                schema=str(src.get("schema") or src["name"]),
                description=str(src.get("description") or ""),
                tables=tables,
                path=path,
            )
        )
    return props


def dump_properties(models: list[ModelSpec]) -> str:
    """The yml text for a models file, in dbt's version 2 format."""
    return dump_yaml({"version": 2, "models": [m.to_yaml() for m in models]})


# --------------------------------------------------------------------------- dbt_project.yml


@dataclass
class ProjectConfig:
    name: str
    profile: str
    model_paths: list[str]
    seed_paths: list[str]
    macro_paths: list[str]
    test_paths: list[str]
    vars: dict[str, Any]
    models: dict[str, Any]
    seeds: dict[str, Any]
    tests: dict[str, Any]
    raw: dict[str, Any]


def parse_project_file(text: str, path: str = "dbt_project.yml") -> ProjectConfig:
    data = load_yaml(text, path)
    if not isinstance(data, dict) or not data.get("name"):
        raise ProjectFileError(path, "has no project name", hint="Add a line such as  name: my_project")
    name = str(data["name"])
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ProjectFileError(path, f"project name {name!r} is not a valid identifier")

    def paths(key: str) -> list[str]:
        value = data.get(key) or DEFAULT_PATHS[key]
        if isinstance(value, str):
            value = [value]
        for p in value:
            if p.startswith("/") or ".." in p.split("/"):
                raise ProjectFileError(path, f"{key} entry {p!r} must stay inside the project")
        return [p.strip("/") for p in value]

    return ProjectConfig(
        name=name,
        profile=str(data.get("profile") or name),
        model_paths=paths("model-paths"),
        seed_paths=paths("seed-paths"),
        macro_paths=paths("macro-paths"),
        test_paths=paths("test-paths"),
        vars=dict(data.get("vars") or {}),
        models=dict(data.get("models") or {}),
        seeds=dict(data.get("seeds") or {}),
        tests=dict(data.get("data_tests") or data.get("tests") or {}),
        raw=data,
    )


def project_skeleton(name: str) -> dict[str, str]:
    """The files of a new, empty data-models project."""
    return {
        "dbt_project.yml": dump_yaml(
            {
                "name": name,
                "version": "1.0.0",
                "config-version": 2,
                "profile": name,
                "model-paths": ["models"],
                "seed-paths": ["seeds"],
                "macro-paths": ["macros"],
                "test-paths": ["tests"],
                "models": {name: {"+materialized": "view"}},
            }
        ),
        "models/sources.yml": dump_yaml(
            {"version": 2, "sources": [{"name": "raw", "schema": "raw", "tables": []}]}
        ),
        "seeds/.gitkeep": "",
        "macros/.gitkeep": "",
        "tests/.gitkeep": "",
    }
