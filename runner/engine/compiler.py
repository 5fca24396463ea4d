"""Compile a project: render every model in the sandbox with dbt's context, resolve refs, check the SQL.

Each model is rendered once. `ref()` returns a relation whose text is a placeholder until every model's
own `config()` is known; then placeholders become quoted relation names and ephemeral models become
CTEs. The result, a Manifest, is what the planner and the executor work from.
"""

from __future__ import annotations

import ast
import datetime
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from .data_tests import generic_test_sql, wrap_test_sql
from .errors import ProjectError
from .graph import Graph
from .project import Node, Project, merge_config, parse_test_target
from .sandbox import RenderLimitError, make_environment, render
from .sqlcheck import check_query, statement_problem

PLACEHOLDER_RE = re.compile(r"\x00ref:([^\x00]+)\x00")
EXPR_RE = re.compile(r"\{\{(?![-+])((?:[^}'\"]|'[^']*'|\"[^\"]*\")*?)(?<![-+])\}\}")
JINJA_CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class Target:
    name: str = "dev"
    schema: str = "analytics"
    type: str = "duckdb"
    threads: int = 1
    database: str | None = None

    def as_context(self) -> dict[str, Any]:
        return {"name": self.name, "schema": self.schema, "type": self.type, "threads": self.threads,
                "database": self.database, "profile_name": "dmaas", "target_name": self.name}


class Relation:
    """What `ref`, `source` and `this` return: prints as a quoted relation, has dbt's attributes."""

    def __init__(self, schema: str | None, identifier: str, placeholder: str | None = None):
        self.schema, self.identifier, self._placeholder = schema, identifier, placeholder

    @property
    def name(self) -> str:
        return self.identifier

    @property
    def table(self) -> str:
        return self.identifier

    database = None

    def render(self) -> str:
        return str(self)

    def include(self, **_: Any) -> Relation:
        return self

    def __str__(self) -> str:
        if self._placeholder:
            return self._placeholder
        return f"{quote(self.schema)}.{quote(self.identifier)}" if self.schema else quote(self.identifier)

    __html__ = __str__


class MacroReturn(Exception):  # noqa: N818 -- control flow for dbt's {{ return(x) }}
    def __init__(self, value: Any):
        self.value = value


@dataclass
class Manifest:
    project: Project
    target: Target
    nodes: dict[str, Node]
    compiled: dict[str, str]  # uid -> SQL (models, tests)
    relations: dict[str, tuple[str, str]]  # uid -> (schema, identifier) for models, seeds, sources
    graph: Graph
    # uid -> lines the compiled SQL has in front of the model's own first line (ephemeral CTEs),
    # or None where Jinja changed the line count and compiled lines do not map to the source
    line_shift: dict[str, int | None] = field(default_factory=dict)
    # incremental models: what is_incremental() answered when `compiled` was rendered
    incremental: dict[str, bool] = field(default_factory=dict)
    _compiler: Any = field(default=None, repr=False, compare=False)
    _variants: dict[tuple[str, bool], str] = field(default_factory=dict, repr=False, compare=False)
    # uid -> (the SQL checked, its problem or None): a kept manifest (a worker's, across hourly runs)
    # parses each model once, not once per run (~1 ms a model)
    _checked: dict[str, tuple[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def sql_for(self, uid: str, *, incremental: bool) -> str:
        """The model's SQL for what the warehouse holds when it is built: with is_incremental() true
        (its table exists, no full refresh) or false. dbt renders a model when it runs; a manifest is
        compiled once and kept (a run plans once, a worker keeps main's manifest across runs), so
        an incremental model compiled before its table existed, or after it was dropped, is
        rendered again here. Without this, a table that exists got the full select appended."""
        if self.incremental.get(uid, incremental) == incremental:
            return self.compiled[uid]
        key = (uid, incremental)
        if key not in self._variants:
            self._variants[key] = self._compiler.render_variant(self, uid, incremental)
        return self._variants[key]

    def source_line(self, uid: str, compiled_line: int | None) -> int | None:
        shift = self.line_shift.get(uid)
        if compiled_line is None or shift is None:
            return None
        line = compiled_line - shift
        return line if line >= 1 else None

    def check_sql(self, uid: str) -> None:
        """The full syntax check of one model, in the warehouse's dialect; raises ProjectError."""
        node = self.nodes[uid]
        sql = self.compiled[uid]
        known = self._checked.get(uid)
        if known is not None and known[0] == sql:
            problem = known[1]
        else:
            problem = check_query(sql, "postgres" if self.target.type == "postgres" else "duckdb")
            self._checked[uid] = (sql, problem)
        if problem is not None:
            line = self.source_line(uid, problem.line)
            raise ProjectError(node.path, problem.message, line,
                               "" if line or problem.line is None else
                               f"(line {problem.line} of the compiled SQL: dmaas compile shows it)")

    def relation_sql(self, uid: str) -> str:
        schema, identifier = self.relations[uid]
        return f"{quote(schema)}.{quote(identifier)}"


class _NodeRender:
    """The per-node part of dbt's context; the compiler reads back refs, sources and config."""

    def __init__(self, compiler: Compiler, node: Node, exists: bool | None = None):
        self.compiler, self.node = compiler, node
        self.exists = exists  # whether the model's relation exists; None: look in compiler.existing
        self.asked_incremental: bool | None = None
        self.refs: list[tuple[str | None, str]] = []
        self.sources: list[tuple[str, str]] = []
        self.config_calls: dict[str, Any] = {}

    def config_value(self, key: str, default: Any = None) -> Any:
        if key in self.config_calls:
            return self.config_calls[key]
        return self.node.config.get(key, default)

    def ref(self, *args: str, **kwargs: Any) -> Relation:
        if len(args) == 1:
            package, name = None, args[0]
        elif len(args) == 2:
            package, name = args
        else:
            raise ProjectError(self.node.path, "ref() takes a model name, or a project name and a model name")
        if package not in (None, self.compiler.project.name):
            raise ProjectError(self.node.path, f"ref('{package}', '{name}'): packages other than "
                               f"{self.compiler.project.name} are not available")
        self.refs.append((package, name))
        uid = self.compiler.project.model_uid(name)
        if uid is None:
            return Relation(None, name, placeholder=f"\x00ref:missing.{name}\x00")
        schema, identifier = self.compiler.relation_for(self.compiler.project.nodes[uid])
        return Relation(schema, identifier, placeholder=f"\x00ref:{uid}\x00")

    def source(self, source_name: str, table_name: str) -> Relation:
        self.sources.append((source_name, table_name))
        uid = self.compiler.project.source_uid(source_name, table_name)
        if uid is None:
            return Relation(None, f"{source_name}.{table_name}", placeholder=f"\x00ref:missing-source.{source_name}.{table_name}\x00")
        src = self.compiler.project.sources[uid]
        return Relation(src.schema, src.identifier)

    def config(self, *args: Any, **kwargs: Any) -> str:
        if args and isinstance(args[0], dict):
            kwargs = {**args[0], **kwargs}
        for key, value in kwargs.items():
            if key == "tags":
                tags = list(self.config_calls.get("tags") or [])
                tags += [t for t in (value if isinstance(value, (list, tuple)) else [value]) if t not in tags]
                self.config_calls["tags"] = tags
            else:
                self.config_calls[key] = value
        return ""

    def this(self) -> Relation:
        schema, identifier = self.compiler.relation_for(self.node, self.config_calls)
        return Relation(schema, identifier)

    def is_incremental(self) -> bool:
        if self.config_value("materialized") != "incremental":
            return False
        full_refresh = self.config_value("full_refresh")
        if full_refresh is None:
            full_refresh = self.compiler.full_refresh
        if full_refresh:
            return False
        if self.exists is None:
            schema, identifier = self.compiler.relation_for(self.node, self.config_calls)
            self.exists = (schema.lower(), identifier.lower()) in self.compiler.existing
        self.asked_incremental = self.exists
        return self.exists


class _ConfigObject:
    """`config` in templates: callable, and `config.get(key, default)` as in dbt."""

    def __init__(self, state: _NodeRender):
        self._state = state

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return self._state.config(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.config_value(key, default)

    def require(self, key: str) -> Any:
        return self._state.config_value(key)


class Compiler:
    def __init__(self, project: Project, target: Target, existing: set[tuple[str, str]] | None = None,
                 full_refresh: bool = False, dialect: str | None = None):
        self.project, self.target = project, target
        self.existing = {(s.lower(), n.lower()) for s, n in (existing or set())}
        self.full_refresh = full_refresh
        self.dialect = dialect or ("postgres" if target.type == "postgres" else "duckdb")
        self.run_started_at = datetime.datetime.now(datetime.UTC)
        self.env = make_environment()
        self._install_globals()
        self._templates: dict[str, jinja2.Template] = {}
        self._config_calls: dict[str, dict[str, Any]] = {}
        self._macros: set[str] = set()
        self._load_macros()

    # ------------------------------------------------------------------ the context
    def _install_globals(self) -> None:
        project = self.project

        def var(name: str, *default: Any) -> Any:
            try:
                return project.var(name, default[0] if default else None, has_default=bool(default))
            except KeyError:
                raise jinja2.TemplateRuntimeError(
                    f"var('{name}') has no value: set it under vars: in dbt_project.yml, "
                    f"pass --vars, or give a default: var('{name}', 'value')"
                ) from None

        def env_var(name: str, *default: Any) -> Any:
            raise jinja2.TemplateRuntimeError(
                f"env_var('{name}') is not available in models: models cannot read the server's "
                "environment. Use var() instead."
            )

        def return_(value: Any = None) -> None:
            raise MacroReturn(value)

        def raise_compiler_error(message: str) -> None:
            raise jinja2.TemplateRuntimeError(str(message))

        self.env.globals.update(
            var=var,
            env_var=env_var,
            target=self.target.as_context(),
            log=lambda *a, **k: "",
            print=lambda *a, **k: "",
            tojson=lambda v, **k: json.dumps(v, default=str),
            fromjson=lambda s, default=None: json.loads(s) if s else default,
            exceptions={"raise_compiler_error": raise_compiler_error, "warn": lambda *a, **k: ""},
            run_started_at=self.run_started_at,
            modules={"datetime": datetime},
            flags={"FULL_REFRESH": self.full_refresh},
            execute=True,
            project_name=project.name,
            **{"return": return_},
        )

    def _load_macros(self) -> None:
        for path, text in sorted(self.project.macro_files.items()):
            try:
                module = self.env.from_string(text).make_module()
            except jinja2.TemplateSyntaxError as err:
                raise ProjectError(path, f"Jinja syntax error: {err.message}", err.lineno) from None
            except Exception as err:  # a macro file runs top-level code only to define macros
                raise ProjectError(path, f"cannot load macros: {err}") from None
            for name, value in vars(module).items():
                if isinstance(value, jinja2.runtime.Macro):
                    self.env.globals[name] = _wrap_macro(value)
                    self._macros.add(name)

    def relation_for(self, node: Node, config_calls: dict[str, Any] | None = None) -> tuple[str, str]:
        calls = config_calls if config_calls is not None else self._config_calls.get(node.unique_id, {})
        custom = calls.get("schema", node.config.get("schema"))
        alias = calls.get("alias", node.config.get("alias")) or node.name
        override = self.env.globals.get("generate_schema_name")
        if override is not None:
            schema = str(override(custom, {"name": node.name, "unique_id": node.unique_id,
                                           "resource_type": node.resource_type, "fqn": node.fqn})).strip()
        elif custom:
            schema = f"{self.target.schema}_{str(custom).strip()}"
        else:
            schema = self.target.schema
        return schema, str(alias)

    # ------------------------------------------------------------------ rendering
    def _template(self, node: Node) -> jinja2.Template:
        template = self._templates.get(node.raw_code)
        if template is None:
            template = self.env.from_string(node.raw_code)
            self._templates[node.raw_code] = template
        return template

    def _fast_render(self, node: Node, state: _NodeRender) -> str | None:
        """Models whose only Jinja is `{{ f(literal, ...) }}` calls (ref, source, config, var, macros)
        are rendered without Jinja's compiler: the same output, without ~2 ms of compiling per model."""
        text = node.raw_code
        if "{%" in text or "{#" in text:
            return None
        if "{{" not in text:
            return text
        matches = list(EXPR_RE.finditer(text))
        if len(matches) != text.count("{{"):
            return None
        calls = []
        for m in matches:
            call = _literal_call(m.group(1))
            if call is None or not (call[0] in ("ref", "source", "var", "config") or call[0] in self._macros):
                return None
            calls.append(call)
        functions = {"ref": state.ref, "source": state.source, "config": state.config,
                     "var": self.env.globals["var"]}
        parts: list[str] = []
        pos = 0
        for m, (name, args, kwargs) in zip(matches, calls, strict=True):
            fn = functions.get(name) or self.env.globals[name]
            parts.append(text[pos:m.start()])
            parts.append(str(fn(*args, **kwargs)))
            pos = m.end()
        parts.append(text[pos:])
        return "".join(parts)

    def render_node(self, node: Node, exists: bool | None = None) -> tuple[str, _NodeRender]:
        state = _NodeRender(self, node, exists)
        self._config_calls[node.unique_id] = state.config_calls
        try:
            rendered = self._fast_render(node, state)
            if rendered is None:
                context = {
                    "ref": state.ref,
                    "source": state.source,
                    "config": _ConfigObject(state),
                    "this": state.this(),
                    "is_incremental": state.is_incremental,
                    "model": {"name": node.name, "unique_id": node.unique_id, "path": node.path,
                              "resource_type": node.resource_type, "config": node.config},
                }
                template = self._template(node)
                rendered = render(template, context)
        except ProjectError:
            raise
        except jinja2.TemplateSyntaxError as err:
            raise ProjectError(node.path, f"Jinja syntax error: {err.message}", err.lineno,
                               "Check that every {{ has its }} and every {% if %}/{% for %} is closed.") from None
        except SecurityError as err:
            raise ProjectError(node.path, f"not allowed in a model: {err}", _jinja_line(err),
                               "Models may use ref, source, config, var and macros, not Python internals.") from None
        except RenderLimitError as err:
            raise ProjectError(node.path, str(err), _jinja_line(err)) from None
        except MacroReturn:
            raise ProjectError(node.path, "return() is only allowed inside a macro") from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as err:
            message = getattr(err, "message", None) or str(err)
            raise ProjectError(node.path, f"Jinja error: {message}", _jinja_line(err)) from None
        return rendered, state

    # ------------------------------------------------------------------ the whole project
    def compile(self) -> Manifest:
        project = self.project
        nodes = {uid: n for uid, n in project.nodes.items() if n.config.get("enabled", True) is not False}
        rendered: dict[str, str] = {}
        asked: dict[str, bool] = {}  # models whose SQL depends on is_incremental(): its answer
        for uid, node in nodes.items():
            if node.resource_type == "model" or (node.test and node.test.kind == "singular"):
                text, state = self.render_node(node)
                rendered[uid] = text
                if state.asked_incremental is not None:
                    asked[uid] = state.asked_incremental
                node.refs, node.sources = state.refs, state.sources
                if state.config_calls:
                    node.config = merge_config(node.config, state.config_calls)
        nodes = {uid: n for uid, n in nodes.items() if n.config.get("enabled", True) is not False}
        # tests on disabled nodes go with them
        nodes = {uid: n for uid, n in nodes.items()
                 if not (n.test and n.test.attached_uid and n.test.attached_uid not in nodes
                         and n.test.attached_uid not in project.sources)}

        relations: dict[str, tuple[str, str]] = {}
        for uid, node in nodes.items():
            if node.resource_type in ("model", "seed"):
                relations[uid] = self.relation_for(node)
        for uid, src in project.sources.items():
            relations[uid] = (src.schema, src.identifier)

        for node in nodes.values():
            node.depends_on = self._dependencies(node, nodes)
        graph = Graph({uid: [d for d in n.depends_on if d in nodes] for uid, n in nodes.items()})
        cycle = graph.find_cycle()
        if cycle:
            names = " -> ".join(nodes[u].name for u in cycle)
            raise ProjectError(nodes[cycle[0]].path, f"models depend on each other in a circle: {names}",
                               hint="Remove one of these refs so the dependencies flow one way.")

        manifest = Manifest(project=project, target=self.target, nodes=nodes, compiled={},
                            relations=relations, graph=graph, incremental=asked, _compiler=self)
        self._rendered = rendered
        for uid, text in rendered.items():
            manifest.compiled[uid] = self._finish_sql(manifest, nodes[uid], text)
        for uid, node in nodes.items():
            if node.test and node.test.kind != "singular":
                manifest.compiled[uid] = self._generic_test(manifest, node)
        return manifest

    def _dependencies(self, node: Node, nodes: dict[str, Node]) -> list[str]:
        project = self.project
        deps: list[str] = []
        if node.test and node.test.kind != "singular":
            deps.append(node.test.attached_uid)  # type: ignore[arg-type]
            if node.test.kind == "relationships":
                target = parse_test_target(node.test.kwargs.get("to"))
                if target is None:
                    raise ProjectError(node.path, f"relationships test on {node.test.model}.{node.test.column}: "
                                       f"to: must be ref('model') or source('name', 'table'), not {node.test.kwargs.get('to')!r}")
                kind, args = target
                uid = project.model_uid(args[1]) if kind == "ref" else project.source_uid(*args)  # type: ignore[arg-type]
                if uid is None or (uid not in nodes and uid not in project.sources):
                    raise ProjectError(node.path, f"relationships test on {node.test.model}.{node.test.column} "
                                       f"points to {node.test.kwargs.get('to')}, which does not exist")
                node.test.to_uid = uid
                deps.append(uid)
            return deps
        for _package, name in node.refs:
            uid = project.model_uid(name)
            if uid is None or uid not in nodes:
                disabled = uid is not None
                known = [n.name for n in nodes.values() if n.resource_type in ("model", "seed")]
                close = difflib.get_close_matches(name, known, n=1)
                raise ProjectError(
                    node.path,
                    f"ref('{name}') points to a model that is {'disabled' if disabled else 'not in the project'}",
                    _line_of(node.raw_code, node.raw_code.find(name)),
                    f"Did you mean ref('{close[0]}')?" if close else "Check the model's name.",
                )
            if uid not in deps:
                deps.append(uid)
        for source_name, table in node.sources:
            uid = project.source_uid(source_name, table)
            if uid is None:
                known = [f"{s.source_name}.{s.name}" for s in project.sources.values()]
                close = difflib.get_close_matches(f"{source_name}.{table}", known, n=1)
                raise ProjectError(
                    node.path, f"source('{source_name}', '{table}') is not declared in any sources: yml",
                    _line_of(node.raw_code, node.raw_code.find(table)),
                    f"Did you mean source('{close[0].replace('.', chr(39) + ', ' + chr(39))}')?" if close
                    else "Declare the table under sources: in a yml file.",
                )
            if uid not in deps:
                deps.append(uid)
        return deps

    def render_variant(self, manifest: Manifest, uid: str, exists: bool) -> str:
        """`uid` rendered again with is_incremental() answering as if its relation did (not) exist."""
        node = manifest.nodes[uid]
        text, _ = self.render_node(node, exists)
        shift = manifest.line_shift.get(uid)
        sql = self._finish_sql(manifest, node, text)
        manifest.line_shift[uid] = shift  # the lines of `compiled`, which pages and errors show
        return sql

    def _finish_sql(self, manifest: Manifest, node: Node, text: str) -> str:
        ctes: dict[str, str] = {}

        def resolve(sql: str, seen: tuple[str, ...]) -> str:
            def sub(m: re.Match[str]) -> str:
                uid = m.group(1)
                target = manifest.nodes.get(uid)
                if target is not None and target.materialized == "ephemeral":
                    if uid in seen:
                        raise ProjectError(node.path, "ephemeral models refer to each other in a circle")
                    cte = f"__dbt__cte__{target.name}"
                    if cte not in ctes:
                        body = resolve(manifest_rendered(uid), (*seen, uid))
                        ctes[cte] = body
                    return cte
                return manifest.relation_sql(uid)

            return PLACEHOLDER_RE.sub(sub, sql)

        def manifest_rendered(uid: str) -> str:
            return self._rendered[uid]

        sql = resolve(text, (node.unique_id,))
        shift: int | None = 0 if text.count("\n") == node.raw_code.count("\n") else None
        if ctes:
            before = sql.count("\n")
            sql = _inject_ctes(sql, ctes)
            shift = None if shift is None else sql.count("\n") - before
        manifest.line_shift[node.unique_id] = shift
        problem = statement_problem(sql)
        if problem is not None:
            line = manifest.source_line(node.unique_id, problem.line)
            raise ProjectError(node.path, problem.message, line)
        return sql

    def _generic_test(self, manifest: Manifest, node: Node) -> str:
        info = node.test
        assert info is not None
        relation = manifest.relation_sql(info.attached_uid)  # type: ignore[arg-type]
        if manifest.nodes.get(info.attached_uid) is not None and manifest.nodes[info.attached_uid].materialized == "ephemeral":  # type: ignore[index]
            raise ProjectError(node.path, f"tests cannot run on the ephemeral model {info.model}")
        where = node.config.get("where")
        if where:
            relation = f"(select * from {relation} where {where}) dbt_subquery"
        to_relation = manifest.relation_sql(info.to_uid) if info.to_uid else None
        try:
            return generic_test_sql(info.kind, relation, info.kwargs, to_relation)
        except ValueError as err:
            raise ProjectError(node.path, f"test {node.name}: {err}") from None


def compile_project(project: Project, target: Target, existing: set[tuple[str, str]] | None = None,
                    full_refresh: bool = False) -> Manifest:
    return Compiler(project, target, existing, full_refresh).compile()


def test_query(manifest: Manifest, uid: str) -> str:
    node = manifest.nodes[uid]
    return wrap_test_sql(manifest.compiled[uid], node.config)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in JINJA_CONSTANTS:
        return JINJA_CONSTANTS[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    return ast.literal_eval(node)


def _literal_call(expr: str) -> tuple[str, list[Any], dict[str, Any]] | None:
    """`name('a', k=[1, 2])` with only literal arguments, else None (then Jinja renders it)."""
    expr = expr.strip()
    if not expr or "\n" in expr and expr.count("(") != 1:
        return None
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        return None
    try:
        args = [_literal(a) for a in tree.args]
        kwargs = {k.arg: _literal(k.value) for k in tree.keywords if k.arg}
    except (ValueError, TypeError, SyntaxError):
        return None
    if len(kwargs) != len(tree.keywords) or any(isinstance(a, ast.Starred) for a in tree.args):
        return None
    return tree.func.id, args, kwargs


def _wrap_macro(macro: jinja2.runtime.Macro) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except MacroReturn as ret:
            return ret.value

    return call


def _inject_ctes(sql: str, ctes: dict[str, str]) -> str:
    """Put ephemeral models in front as CTEs, joining an existing WITH if the query has one."""
    body = ",\n".join(f"{name} as (\n{text}\n)" for name, text in ctes.items())
    m = re.match(r"^(\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*)with\s+(?!recursive\b)", sql, re.I | re.S)
    if m:
        return f"{sql[:m.end()]}{body},\n{sql[m.end():]}"
    return f"with {body}\n{sql}"


def _line_of(text: str, offset: int) -> int | None:
    return text.count("\n", 0, offset) + 1 if offset >= 0 else None


def _jinja_line(err: BaseException) -> int | None:
    lineno = getattr(err, "lineno", None)
    if lineno:
        return lineno
    tb = err.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
