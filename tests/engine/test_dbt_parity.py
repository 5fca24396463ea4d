"""dmaas builds a project exactly as dbt-core does: the same relations, columns, rows and test outcomes.

dbt-core 1.11 with dbt-duckdb is the oracle. Both tools build their own copy of
tests/fixtures/dbt_project_full (a small shop that uses every feature the engine supports) into their own
DuckDB file, step by step:

    first           build                       everything from nothing
    again           build                       incremental models run incrementally on unchanged data
    new_data        build                       after new rows are appended to the raw seeds
    full_refresh    build --full-refresh        incremental models rebuilt from scratch
    selected_vars   build --select customers --vars '{vip_threshold: 50}'

After each step every relation of both warehouses is read back and compared (kind, column names, column
types, the multiset of rows), and every node's outcome (status, failures) is compared with dbt's
run_results.json, tests being matched by what they check (kind, model, column, arguments) rather than by
name. `ls` with dbt's selection syntax must pick the same models and seeds;
tests/fixtures/dbt_project_broken compares the statuses of a failing build; and the PostgreSQL test builds
the shop with dmaas on a real server and compares its rows and outcomes with dbt's DuckDB build.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests import services

pytestmark = pytest.mark.dbt

SCHEMA = "analytics"
THREADS = 2
# dmaas has no --target option; dbt's profile names its target like this, and the shop writes
# target.name into customers.built_for_target.
DBT_TARGET_NAME = "dev"
FULL = "dbt_project_full"
BROKEN = "dbt_project_broken"
STEPS = ["first", "again", "new_data", "full_refresh", "selected_vars"]

# Appended to the raw seeds before the `new_data` step. Order 14 falls on the newest day already in
# revenue_daily (2024-03-12), so its unique_key must *replace* that day's row; payment 16 pays order 13,
# of the same day. An engine that appends instead of replacing fails unique_revenue_daily_order_date.
NEW_RAW_ROWS = {
    "seeds/raw/raw_orders.csv": [
        "14,8,2024-03-12,completed",
        "15,2,2024-03-15,shipped",
        "16,3,2024-04-01,placed",
    ],
    "seeds/raw/raw_payments.csv": [
        "16,13,credit_card,2500,2024-03-13 10:00:00",
        "17,14,coupon,1000,2024-03-12 18:30:00",
        "18,15,credit_card,4200,2024-03-15 09:45:00",
        "19,16,bank_transfer,999,2024-04-02 08:00:00",
    ],
}

# What dbt-core makes of the shop (checked in test_dbt_builds_the_shop_as_designed, so that an edit of
# the fixture cannot quietly make the parity tests trivial).
EXPECTED_RELATIONS = {
    ("analytics", "country_codes"): "table",
    ("analytics", "country_summary"): "view",
    ("analytics", "customers"): "table",
    ("analytics", "orders"): "table",
    ("analytics", "stg_customers"): "view",
    ("analytics", "stg_orders"): "view",
    ("analytics", "stg_payments"): "view",
    ("analytics_finance", "finance_kpis"): "table",
    ("analytics_finance", "payments_log"): "table",
    ("analytics_finance", "revenue_daily"): "table",
    ("analytics_raw", "raw_customers"): "table",
    ("analytics_raw", "raw_orders"): "table",
    ("analytics_raw", "raw_payments"): "table",
}
EXPECTED_WARNINGS = {
    ("test", "not_null", "customers", "email", ()): 1,
    ("test", "singular", "assert_no_zero_payments"): 1,
}
EXPECTED_BROKEN_STATUSES = {
    ("seed", "items"): "success",
    ("model", "stg_items"): "success",
    ("model", "prices"): "success",
    ("model", "bad_cast"): "error",
    ("model", "after_bad_cast"): "skipped",
    ("model", "items_by_category"): "skipped",
    ("model", "category_report"): "skipped",
    ("test", "unique", "stg_items", "item_id", ()): "pass",
    ("test", "not_null", "stg_items", "item_id", ()): "pass",
    ("test", "unique", "stg_items", "category", ()): "fail",
    ("test", "not_null", "items_by_category", "category", ()): "skipped",
    ("test", "not_null", "bad_cast", "id", ()): "skipped",
    ("test", "unique", "prices", "id", ()): "pass",
    ("test", "not_null", "prices", "price", ()): "warn",
    ("test", "singular", "assert_cheap_items_exist"): "fail",
}


# --------------------------------------------------------------------------------------------------
# Outcomes: what happened to each node, keyed by what the node is rather than by its generated name
# --------------------------------------------------------------------------------------------------

NodeKey = tuple[Any, ...]
REF_RE = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)""")


class Outcome(NamedTuple):
    status: str
    failures: int | None
    label: str  # the tool's own name for the node, for messages


def _ref_target(value: Any) -> str | None:
    """`ref('customers')`, `ref('shop', 'customers')`, `{{ ref("customers") }}` or `customers` -> `customers`."""
    if value is None:
        return None
    if isinstance(value, dict):  # an engine may hand kwargs over already parsed
        value = value.get("name") or value.get("model") or value.get("ref") or json.dumps(value)
    match = REF_RE.search(str(value))
    if match:
        return match.group(2) or match.group(1)
    return str(value).strip()


def data_test_key(
    kind: str, model: str | None, column: str | None, kwargs: dict[str, Any], name: str
) -> NodeKey:
    """The identity of a data test: (kind, model, column, the arguments that tell it apart)."""
    if kind == "singular":
        return ("test", "singular", name)
    args: list[tuple[str, Any]] = []
    if kind == "accepted_values":
        args.append(("values", tuple(sorted(str(v) for v in kwargs.get("values") or []))))
    elif kind == "relationships":
        args.append(("to", _ref_target(kwargs.get("to"))))
        args.append(("field", kwargs.get("field")))
    elif kind not in ("unique", "not_null"):
        args.extend(
            (k, json.dumps(v, sort_keys=True, default=str))
            for k, v in sorted(kwargs.items())
            if k not in ("column_name", "model")
        )
    return ("test", kind, model, column, tuple(args))


def describe_key(key: NodeKey) -> str:
    if key[0] != "test":
        return f"{key[0]} {key[1]}"
    if key[1] == "singular":
        return f"singular test {key[2]}"
    _, kind, model, column, args = key
    shown = ", ".join(f"{k}={v}" for k, v in args)
    return f"{kind} test on {model}.{column}" + (f" ({shown})" if shown else "")


def _failures(status: str, failures: Any) -> int | None:
    """Failures counted by dbt for pass/fail/warn; a pass counts 0 whether written 0 or null."""
    if status not in ("pass", "fail", "warn"):
        return None
    return int(failures or 0)


def _put(outcomes: dict[NodeKey, Outcome], key: NodeKey, outcome: Outcome) -> None:
    assert key not in outcomes, (
        f"two nodes with the same identity {describe_key(key)}: {outcomes[key].label}, {outcome.label}"
    )
    outcomes[key] = outcome


def dbt_outcomes(target: Path) -> dict[NodeKey, Outcome]:
    """Read dbt's target/run_results.json, with manifest.json to know what each test checks."""
    results_file = target / "run_results.json"
    if not results_file.exists():
        return {}
    run_results = json.loads(results_file.read_text())
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    outcomes: dict[NodeKey, Outcome] = {}
    for result in run_results["results"]:
        node = nodes[result["unique_id"]]
        kind = node["resource_type"]
        if kind in ("model", "seed"):
            key: NodeKey = (kind, node["name"])
        elif kind == "test":
            meta = node.get("test_metadata")
            if not meta:
                key = data_test_key("singular", None, None, {}, node["name"])
            else:
                attached = nodes.get(node.get("attached_node") or "")
                kwargs = meta.get("kwargs") or {}
                key = data_test_key(
                    meta["name"],
                    attached["name"] if attached else None,
                    kwargs.get("column_name") or node.get("column_name"),
                    kwargs,
                    node["name"],
                )
        else:
            continue
        status = str(result["status"])
        _put(outcomes, key, Outcome(status, _failures(status, result.get("failures")), result["unique_id"]))
    return outcomes


def dmaas_outcomes(run_results: dict[str, Any] | None) -> dict[NodeKey, Outcome]:
    """Read dmaas's run_results.json (see runner/engine: one result per seed, model and test)."""
    outcomes: dict[NodeKey, Outcome] = {}
    for result in (run_results or {}).get("results", []):
        kind = result["resource_type"]
        if kind in ("model", "seed"):
            key: NodeKey = (kind, result["name"])
        elif kind == "test":
            test = result.get("test") or {}
            key = data_test_key(
                test.get("kind") or "singular",
                test.get("model"),
                test.get("column"),
                test.get("kwargs") or {},
                result["name"],
            )
        else:
            continue
        status = str(result["status"])
        _put(outcomes, key, Outcome(status, _failures(status, result.get("failures")), result["unique_id"]))
    return outcomes


def outcome_differences(expected: dict[NodeKey, Outcome], actual: dict[NodeKey, Outcome]) -> list[str]:
    diffs = []
    for key in sorted(expected.keys() | actual.keys(), key=repr):
        want, got = expected.get(key), actual.get(key)
        if got is None:
            diffs.append(f"{describe_key(key)}: dbt ran it ({want.status}, {want.label}); dmaas did not")
        elif want is None:
            diffs.append(f"{describe_key(key)}: dmaas ran it ({got.status}, {got.label}); dbt did not")
        elif (want.status, want.failures) != (got.status, got.failures):
            diffs.append(
                f"{describe_key(key)}: dbt {want.status} (failures={want.failures}), "
                f"dmaas {got.status} (failures={got.failures}) [{got.label}]"
            )
    return diffs


# --------------------------------------------------------------------------------------------------
# Warehouse snapshots: every relation with its kind, columns and rows
# --------------------------------------------------------------------------------------------------

# Relations dbt leaves behind only while it works; never part of a finished build.
DBT_INTERNAL = re.compile(r"__dbt_(tmp|backup)$")


def normalise(value: Any) -> tuple[Any, ...]:
    """A comparable, hashable form of one value; numbers compare by value whatever their Python type.

    Column types are compared separately, so a DECIMAL that became a DOUBLE is reported there, not
    hidden here. Doubles are compared to 12 significant digits (a parallel sum may differ in the last bit).
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("num", Decimal(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ("float", repr(value))
        return ("num", Decimal(f"{value:.12g}"))
    if isinstance(value, Decimal):
        return ("num", value)
    if isinstance(value, datetime):
        return ("timestamp", value.isoformat())
    if isinstance(value, date):
        return ("date", value.isoformat())
    if isinstance(value, time):
        return ("time", value.isoformat())
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list | tuple):
        return ("list", tuple(normalise(v) for v in value))
    if isinstance(value, dict):
        return ("struct", tuple(sorted((str(k), normalise(v)) for k, v in value.items())))
    return ("other", repr(value))


def show(row: tuple[tuple[Any, ...], ...]) -> str:
    return "(" + ", ".join("NULL" if v[0] == "null" else str(v[1]) for v in row) + ")"


@dataclass
class Relation:
    kind: str  # "table" | "view"
    columns: list[tuple[str, str]]  # (name, type) in order
    rows: Counter[tuple[tuple[Any, ...], ...]] = field(default_factory=Counter)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


Snapshot = dict[tuple[str, str], Relation]

LIST_RELATIONS = """
    select table_schema, table_name, table_type
    from information_schema.tables
    where table_catalog = current_database()
      and table_schema not in ('information_schema', 'pg_catalog')
    order by 1, 2
"""
LIST_COLUMNS = """
    select column_name, data_type
    from information_schema.columns
    where table_catalog = current_database() and table_schema = {p} and table_name = {p}
    order by ordinal_position
"""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _snapshot(con: Any, placeholder: str) -> Snapshot:
    snapshot: Snapshot = {}
    for schema, name, table_type in con.execute(LIST_RELATIONS).fetchall():
        if DBT_INTERNAL.search(name) or schema.startswith("pg_"):
            continue
        kind = {"BASE TABLE": "table", "VIEW": "view"}.get(table_type, table_type.lower())
        columns = con.execute(LIST_COLUMNS.format(p=placeholder), [schema, name]).fetchall()
        rows = con.execute(f"select * from {_quote(schema)}.{_quote(name)}").fetchall()
        snapshot[(schema, name)] = Relation(
            kind,
            [(str(c), str(t)) for c, t in columns],
            Counter(tuple(normalise(v) for v in row) for row in rows),
        )
    return snapshot


def snapshot_duckdb(path: Path) -> Snapshot:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return _snapshot(con, "?")
    finally:
        con.close()


def snapshot_postgres(url: str) -> Snapshot:
    import psycopg

    with psycopg.connect(url) as con:
        return _snapshot(con, "%s")


def relation_differences(expected: Snapshot, actual: Snapshot, aspect: str, *, sample: int = 6) -> list[str]:
    """Differences of one aspect ("relations", "columns", "types" or "rows"), dbt first, dmaas second."""
    diffs: list[str] = []
    if aspect == "relations":
        for key in sorted(expected.keys() - actual.keys()):
            diffs.append(f"{'.'.join(key)} ({expected[key].kind}): built by dbt, missing in dmaas")
        for key in sorted(actual.keys() - expected.keys()):
            diffs.append(f"{'.'.join(key)} ({actual[key].kind}): built by dmaas, not by dbt")
        for key in sorted(expected.keys() & actual.keys()):
            if expected[key].kind != actual[key].kind:
                diffs.append(f"{'.'.join(key)}: a {expected[key].kind} in dbt, a {actual[key].kind} in dmaas")
        return diffs
    for key in sorted(expected.keys() & actual.keys()):
        want, got = expected[key], actual[key]
        name = ".".join(key)
        if want.column_names != got.column_names:
            if aspect in ("columns", "rows"):
                diffs.append(
                    f"{name}: columns differ\n    dbt:   {want.column_names}\n    dmaas: {got.column_names}"
                )
            continue
        if aspect == "types":
            for (column, want_type), (_, got_type) in zip(want.columns, got.columns, strict=True):
                if want_type != got_type:
                    diffs.append(f"{name}.{column}: type {want_type} in dbt, {got_type} in dmaas")
        elif aspect == "rows" and want.rows != got.rows:
            only_dbt = list((want.rows - got.rows).elements())
            only_dmaas = list((got.rows - want.rows).elements())
            lines = [
                f"{name}: rows differ ({sum(want.rows.values())} in dbt, {sum(got.rows.values())} in dmaas); "
                f"columns {want.column_names}"
            ]
            lines += [f"    only in dbt:   {show(r)}" for r in sorted(only_dbt, key=repr)[:sample]]
            lines += [f"    only in dmaas: {show(r)}" for r in sorted(only_dmaas, key=repr)[:sample]]
            hidden = max(0, len(only_dbt) - sample) + max(0, len(only_dmaas) - sample)
            if hidden:
                lines.append(f"    ... and {hidden} more")
            diffs.append("\n".join(lines))
    return diffs


def fail_on(diffs: list[str], title: str) -> None:
    if diffs:
        pytest.fail(f"{title} ({len(diffs)}):\n  " + "\n  ".join(diffs), pytrace=False)


# --------------------------------------------------------------------------------------------------
# The two tools
# --------------------------------------------------------------------------------------------------


@dataclass
class ToolRun:
    tool: str
    argv: list[str]
    exit_code: int
    outcomes: dict[NodeKey, Outcome]
    detail: str = ""


class DbtCore:
    """dbt-core in this process (`dbtRunner`), on dbt-duckdb, with a generated profiles.yml."""

    def __init__(self) -> None:
        from dbt.cli.main import dbtRunner

        self._runner_class = dbtRunner

    def run(self, command: str, project: Path, database: Path, *extra: str) -> ToolRun:
        profiles = self._profiles(project, database)
        argv = [command, "--project-dir", str(project), "--profiles-dir", str(profiles), "--no-partial-parse"]
        argv += extra
        result = self._runner_class().invoke(argv)
        self._release_database()
        exit_code = 0 if result.success else (2 if result.exception is not None else 1)
        return ToolRun(
            "dbt", ["dbt", *argv], exit_code, dbt_outcomes(project / "target"), str(result.exception or "")
        )

    def list_names(self, project: Path, *selection: str) -> set[str]:
        """`dbt ls` of the models and seeds a selection picks, by name."""
        profiles = self._profiles(project, None)
        argv = [
            "ls",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(profiles),
            "--quiet",
            "--output",
            "name",
        ]
        argv += ["--resource-type", "model", "--resource-type", "seed", *selection]
        result = self._runner_class().invoke(argv)
        assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"
        return set(result.result)

    @staticmethod
    def _profiles(project: Path, database: Path | None) -> Path:
        """A profiles.yml for dbt-duckdb beside the project; returns its folder."""
        profile = yaml.safe_load((project / "dbt_project.yml").read_text())["profile"]
        profiles_dir = project.parent / f"{project.name}.profiles"
        profiles_dir.mkdir(exist_ok=True)
        output = {"type": "duckdb", "path": str(database or ":memory:"), "schema": SCHEMA, "threads": THREADS}
        profiles = {profile: {"target": DBT_TARGET_NAME, "outputs": {DBT_TARGET_NAME: output}}}
        (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profiles))
        return profiles_dir

    @staticmethod
    def _release_database() -> None:
        """dbt-duckdb keeps its DuckDB instance open in-process after invoke(); close it so the file can be
        opened read-only here and by other processes."""
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager as manager

        with manager._LOCK:
            if getattr(manager, "_ENV", None) is not None:
                manager._ENV.close()
                manager._ENV = None


@pytest.fixture(scope="module")
def dbt_core() -> Iterator[DbtCore]:
    try:
        import dbt.adapters.duckdb  # noqa: F401
        import dbt.cli.main  # noqa: F401
    except ImportError as exc:
        services.unavailable(f"dbt-core with dbt-duckdb, the oracle of these tests, is not installed: {exc}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        yield DbtCore()


def run_dmaas(
    dmaas: Any, command: str, project: Path, database: Path, target: Path, *extra: str
) -> ToolRun | None:
    if not dmaas.available():
        return None
    run = dmaas.run(command, project, dmaas.duckdb_url(database), *extra, target_path=target)
    return ToolRun("dmaas", run.argv, run.exit_code, dmaas_outcomes(run.run_results), run.describe())


@dataclass
class Step:
    dbt: ToolRun
    dbt_snapshot: Snapshot
    dmaas: ToolRun | None
    dmaas_snapshot: Snapshot | None


@dataclass
class Builds:
    steps: dict[str, Step]
    projects: dict[str, Path]


def append_new_raw_data(project: Path) -> None:
    for path, lines in NEW_RAW_ROWS.items():
        csv = project / path
        text = csv.read_text()
        csv.write_text(text + ("" if text.endswith("\n") else "\n") + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def shop_builds(
    dbt_core: DbtCore, dmaas: Any, fixture_project: Any, tmp_path_factory: pytest.TempPathFactory
) -> Builds:
    """Both tools through the STEPS on their own copy of the shop, with a snapshot after each step."""
    base = tmp_path_factory.mktemp("shop")
    projects = {tool: fixture_project(FULL, base / tool / "shop") for tool in ("dbt", "dmaas")}
    databases = {tool: base / tool / f"{tool}.duckdb" for tool in projects}
    steps: dict[str, Step] = {}

    def both(step: str, command: str, *extra: str) -> None:
        dbt_run = dbt_core.run(command, projects["dbt"], databases["dbt"], *extra)
        dmaas_run = run_dmaas(
            dmaas, command, projects["dmaas"], databases["dmaas"], base / "dmaas" / f"target_{step}", *extra
        )
        dmaas_snapshot = None
        if dmaas_run is not None and databases["dmaas"].exists():
            dmaas_snapshot = snapshot_duckdb(databases["dmaas"])
        steps[step] = Step(dbt_run, snapshot_duckdb(databases["dbt"]), dmaas_run, dmaas_snapshot)

    both("first", "build")
    both("again", "build")
    for project in projects.values():
        append_new_raw_data(project)
    both("new_data", "build")
    both("full_refresh", "build", "--full-refresh")
    both("selected_vars", "build", "--select", "customers", "--vars", "{vip_threshold: 50}")
    return Builds(steps, projects)


def dmaas_step(builds: Builds, step: str) -> Step:
    """The step, failing clearly when dmaas could not take part in it."""
    current = builds.steps[step]
    if current.dmaas is None:
        pytest.fail(
            "runner/engine/cli.py does not exist: the dmaas engine is not there to compare", pytrace=False
        )
    if current.dmaas_snapshot is None:
        pytest.fail(f"dmaas wrote no warehouse file\n{current.dmaas.detail}", pytrace=False)
    return current


# --------------------------------------------------------------------------------------------------
# The oracle does what the fixture intends
# --------------------------------------------------------------------------------------------------


def test_dbt_builds_the_shop_as_designed(shop_builds: Builds) -> None:
    first = shop_builds.steps["first"]
    assert first.dbt.exit_code == 0, first.dbt.detail
    assert {key: rel.kind for key, rel in first.dbt_snapshot.items()} == EXPECTED_RELATIONS
    not_ok = {
        describe_key(key): outcome.status
        for key, outcome in first.dbt.outcomes.items()
        if outcome.status not in ("success", "pass") and key not in EXPECTED_WARNINGS
    }
    assert not not_ok, "the shop should pass everything but its two warnings"
    warnings = {key: o.failures for key, o in first.dbt.outcomes.items() if o.status == "warn"}
    assert warnings == EXPECTED_WARNINGS
    kinds = Counter(key[1] if key[0] == "test" else key[0] for key in first.dbt.outcomes)
    assert kinds == {
        "seed": 4,
        "model": 9,
        "unique": 9,
        "not_null": 12,
        "accepted_values": 4,
        "relationships": 2,
        "singular": 2,
    }
    customers = first.dbt_snapshot[("analytics", "customers")]
    targets = {row[customers.column_names.index("built_for_target")] for row in customers.rows}
    assert targets == {("str", DBT_TARGET_NAME)}


def test_dbt_incremental_models_equal_a_full_refresh(shop_builds: Builds) -> None:
    """The fixture's incremental models are written so that running them incrementally on new data gives
    the same result as rebuilding them; the parity of the steps then says something about dmaas."""
    steps = shop_builds.steps
    for key in [("analytics_finance", "revenue_daily"), ("analytics_finance", "payments_log")]:
        assert steps["new_data"].dbt_snapshot[key].rows == steps["full_refresh"].dbt_snapshot[key].rows, key
        assert steps["new_data"].dbt_snapshot[key].rows != steps["first"].dbt_snapshot[key].rows, key
    revenue = steps["new_data"].dbt_snapshot[("analytics_finance", "revenue_daily")]
    day = [r for r in revenue.rows.elements() if r[0] == ("date", "2024-03-12")]
    assert [(r[2], r[3]) for r in day] == [(("num", 2), ("num", Decimal("35.00")))]


# --------------------------------------------------------------------------------------------------
# dmaas builds what dbt builds
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_dmaas_exits_like_dbt(shop_builds: Builds, step: str) -> None:
    current = dmaas_step(shop_builds, step)
    assert current.dmaas.exit_code == current.dbt.exit_code, (
        f"dbt exited {current.dbt.exit_code}, dmaas {current.dmaas.exit_code}\n{current.dmaas.detail}"
    )


@pytest.mark.parametrize("step", STEPS)
def test_dmaas_builds_the_same_relations(shop_builds: Builds, step: str) -> None:
    current = dmaas_step(shop_builds, step)
    fail_on(
        relation_differences(current.dbt_snapshot, current.dmaas_snapshot, "relations"),
        f"[{step}] relations differ",
    )


@pytest.mark.parametrize("step", STEPS)
def test_dmaas_relations_have_the_same_column_types(shop_builds: Builds, step: str) -> None:
    current = dmaas_step(shop_builds, step)
    fail_on(
        relation_differences(current.dbt_snapshot, current.dmaas_snapshot, "types"),
        f"[{step}] column types differ",
    )


@pytest.mark.parametrize("step", STEPS)
def test_dmaas_relations_have_the_same_rows(shop_builds: Builds, step: str) -> None:
    current = dmaas_step(shop_builds, step)
    fail_on(
        relation_differences(current.dbt_snapshot, current.dmaas_snapshot, "rows"), f"[{step}] rows differ"
    )


@pytest.mark.parametrize("step", STEPS)
def test_dmaas_gives_every_node_the_same_outcome(shop_builds: Builds, step: str) -> None:
    current = dmaas_step(shop_builds, step)
    assert current.dbt.outcomes, "dbt wrote no run results"
    fail_on(
        outcome_differences(current.dbt.outcomes, current.dmaas.outcomes), f"[{step}] node outcomes differ"
    )


# dbt's selection syntax as the engine promises it: name, +name, name+, n+name, name+n, tag:, path:,
# union by space, intersection by comma, --exclude; ephemeral models, seeds and disabled models included.
SELECTIONS = [
    ["--select", "stg_orders+"],
    ["--select", "+customers"],
    ["--select", "2+finance_kpis"],
    ["--select", "stg_payments+1"],
    ["--select", "int_order_payments+"],
    ["--select", "raw_orders+"],
    ["--select", "tag:finance"],
    ["--select", "tag:staging,tag:payments"],
    ["--select", "+orders,tag:staging"],
    ["--select", "path:models/marts"],
    ["--select", "path:models/marts/finance/revenue_daily.sql"],
    ["--select", "stg_customers", "stg_orders"],
    ["--select", "path:models/staging", "tag:marts"],
    ["--select", "+customers", "--exclude", "tag:staging"],
    ["--select", "tag:marts", "--exclude", "path:models/marts/finance"],
    ["--select", "legacy_orders"],
]


@pytest.fixture(scope="module")
def listed_project(fixture_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_project(FULL, tmp_path_factory.mktemp("ls") / "shop")


@pytest.fixture(scope="module")
def every_name(dbt_core: DbtCore, listed_project: Path) -> set[str]:
    """The names of every model and seed, to tell them apart from tests in dmaas's `ls`."""
    return dbt_core.list_names(listed_project)


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda sel: " ".join(sel[1:]))
def test_dmaas_selects_the_same_models_and_seeds_as_dbt(
    dbt_core: DbtCore,
    dmaas: Any,
    listed_project: Path,
    every_name: set[str],
    selection: list[str],
    tmp_path: Path,
) -> None:
    if not dmaas.available():
        pytest.fail(
            "runner/engine/cli.py does not exist: the dmaas engine is not there to compare", pytrace=False
        )
    expected = dbt_core.list_names(listed_project, *selection)
    run = dmaas.run(
        "ls", listed_project, dmaas.duckdb_url(tmp_path / "unused.duckdb"), *selection, target_path=tmp_path
    )
    assert run.exit_code == 0, run.describe()
    # dmaas prints one fully qualified name per node (tests too); keep the models and seeds
    chosen = {line.rsplit(".", 1)[-1] for line in run.stdout.split()} & every_name
    assert chosen == expected, (
        f"only dbt selects {sorted(expected - chosen)}; only dmaas selects {sorted(chosen - expected)}"
    )


# --------------------------------------------------------------------------------------------------
# A failing build: errors, failing tests and skips propagate the same way
# --------------------------------------------------------------------------------------------------


def test_failing_project_gives_every_node_the_same_status(
    dbt_core: DbtCore, dmaas: Any, fixture_project: Any, tmp_path: Path
) -> None:
    dbt_project = fixture_project(BROKEN, tmp_path / "dbt" / "broken")
    dbt_run = dbt_core.run("build", dbt_project, tmp_path / "dbt" / "dbt.duckdb")
    assert dbt_run.exit_code == 1, dbt_run.detail
    assert {key: o.status for key, o in dbt_run.outcomes.items()} == EXPECTED_BROKEN_STATUSES

    dmaas_project = fixture_project(BROKEN, tmp_path / "dmaas" / "broken")
    dmaas_run = run_dmaas(
        dmaas, "build", dmaas_project, tmp_path / "dmaas" / "dmaas.duckdb", tmp_path / "dmaas" / "target"
    )
    if dmaas_run is None:
        pytest.fail(
            "runner/engine/cli.py does not exist: the dmaas engine is not there to compare", pytrace=False
        )
    diffs = outcome_differences(dbt_run.outcomes, dmaas_run.outcomes)
    if dmaas_run.exit_code != dbt_run.exit_code:
        diffs.insert(0, f"exit code: dbt {dbt_run.exit_code}, dmaas {dmaas_run.exit_code}")
    if diffs:
        diffs.append(dmaas_run.detail)
    fail_on(diffs, "the failing build differs")
    dbt_snapshot = snapshot_duckdb(tmp_path / "dbt" / "dbt.duckdb")
    dmaas_snapshot = snapshot_duckdb(tmp_path / "dmaas" / "dmaas.duckdb")
    fail_on(
        relation_differences(dbt_snapshot, dmaas_snapshot, "relations")
        + relation_differences(dbt_snapshot, dmaas_snapshot, "rows"),
        "the failing build left different relations",
    )


# --------------------------------------------------------------------------------------------------
# The same shop through dmaas on a real PostgreSQL
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh database `dmaas_test_<random>` on the test server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"dmaas_test_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            yield urlunsplit(urlsplit(postgres_url)._replace(path="/" + name))
        finally:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.mark.postgres
def test_postgres_build_has_the_same_rows_as_dbt(
    shop_builds: Builds, dmaas: Any, fixture_project: Any, postgres_database: str, tmp_path: Path
) -> None:
    """Type names differ between engines (numeric vs DECIMAL(38,2)); the values must not."""
    if not dmaas.available():
        pytest.fail(
            "runner/engine/cli.py does not exist: the dmaas engine is not there to compare", pytrace=False
        )
    project = fixture_project(FULL, tmp_path / "shop")
    diffs: list[str] = []
    for step in ("first", "again", "new_data"):
        if step == "new_data":
            append_new_raw_data(project)
        run = dmaas.run("build", project, postgres_database, target_path=tmp_path / f"target_{step}")
        oracle = shop_builds.steps[step]
        if run.exit_code != oracle.dbt.exit_code:
            diffs.append(
                f"[{step}] exit code: dbt {oracle.dbt.exit_code}, dmaas on PostgreSQL {run.exit_code}"
            )
        snapshot = snapshot_postgres(postgres_database)
        for aspect in ("relations", "rows"):
            diffs += [f"[{step}] {d}" for d in relation_differences(oracle.dbt_snapshot, snapshot, aspect)]
        diffs += [
            f"[{step}] {d}" for d in outcome_differences(oracle.dbt.outcomes, dmaas_outcomes(run.run_results))
        ]
        if diffs:
            diffs.append(run.describe())
            break
    fail_on(diffs, "dmaas on PostgreSQL differs from dbt on DuckDB")
