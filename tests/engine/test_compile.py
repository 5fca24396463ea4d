"""Compiling: refs and sources resolve, config lands, and every project error names file, line and fix."""

import pytest

from runner.engine.errors import ProjectError
from tests.engine.helpers import PROJECT_YML, compile_files, project

SOURCES = "version: 2\nsources:\n  - name: raw\n    schema: raw_data\n    tables:\n      - name: orders\n"


def test_ref_and_source_become_quoted_relations():
    m = compile_files(
        {
            "models/sources.yml": SOURCES,
            "models/stg_orders.sql": "select * from {{ source('raw', 'orders') }}",
            "models/orders.sql": "select * from {{ ref('stg_orders') }}",
        }
    )
    assert m.compiled["model.shop.stg_orders"] == 'select * from "raw_data"."orders"'
    assert m.compiled["model.shop.orders"] == 'select * from "analytics"."stg_orders"'
    assert m.nodes["model.shop.orders"].depends_on == ["model.shop.stg_orders"]


def test_two_argument_ref_and_config_schema_follow_dbt_naming():
    m = compile_files(
        {
            "models/a.sql": "{{ config(schema='finance', alias='a_final') }}select 1 as x",
            "models/b.sql": "select * from {{ ref('shop', 'a') }}",
        }
    )
    assert m.relations["model.shop.a"] == ("analytics_finance", "a_final")
    assert '"analytics_finance"."a_final"' in m.compiled["model.shop.b"]


def test_project_folder_config_and_tags_accumulate():
    dbt_project = PROJECT_YML + (
        "models:\n  shop:\n    +materialized: table\n    +tags: [nightly]\n"
        "    marts:\n      +schema: marts\n      +tags: finance\n"
    )
    m = compile_files({"models/marts/rev.sql": "{{ config(tags=['kpi']) }}select 1 as x"}, dbt_project)
    node = m.nodes["model.shop.rev"]
    assert node.materialized == "table"
    assert node.tags == ["nightly", "finance", "kpi"]
    assert m.relations["model.shop.rev"] == ("analytics_marts", "rev")


def test_disabled_models_are_left_out():
    dbt_project = PROJECT_YML + "models:\n  shop:\n    legacy:\n      +enabled: false\n"
    m = compile_files({"models/legacy/old.sql": "select 1", "models/new.sql": "select 2 as x"}, dbt_project)
    assert "model.shop.old" not in m.nodes and "model.shop.new" in m.nodes


def test_ephemeral_models_are_inlined_as_ctes():
    m = compile_files(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}select 1 as x",
            "models/user.sql": "with t as (select * from {{ ref('eph') }}) select * from t",
        }
    )
    sql = m.compiled["model.shop.user"]
    assert sql.startswith("with __dbt__cte__eph as (")
    assert "from __dbt__cte__eph" in sql


def test_is_incremental_is_true_only_when_the_table_exists():
    files = {
        "models/inc.sql": (
            "{{ config(materialized='incremental') }}select 1 as x\n"
            "{% if is_incremental() %}where x > (select max(x) from {{ this }}){% endif %}"
        )
    }
    assert "where" not in compile_files(files).compiled["model.shop.inc"]
    sql = compile_files(files, existing={("analytics", "inc")}).compiled["model.shop.inc"]
    assert 'where x > (select max(x) from "analytics"."inc")' in sql


def test_var_reads_project_vars_and_defaults():
    dbt_project = PROJECT_YML + "vars:\n  min_amount: 5\n"
    m = compile_files(
        {"models/v.sql": "select {{ var('min_amount') }} as a, {{ var('missing', 7) }} as b"}, dbt_project
    )
    assert m.compiled["model.shop.v"] == "select 5 as a, 7 as b"
    with pytest.raises(ProjectError, match=r"var\('nope'\) has no value"):
        compile_files({"models/v.sql": "select {{ var('nope') }}"})


def test_macros_and_return_work():
    m = compile_files(
        {
            "macros/money.sql": "{% macro cents(col) %}({{ col }} / 100.0){% endmacro %}\n"
            "{% macro pick() %}{{ return('x') }}{% endmacro %}",
            "models/m.sql": "select {{ cents('amount') }} as dollars, '{{ pick() }}' as p from (select 1 as amount)",
        }
    )
    assert m.compiled["model.shop.m"].startswith("select (amount / 100.0) as dollars, 'x' as p")


def test_unknown_ref_says_did_you_mean_with_the_line():
    with pytest.raises(ProjectError) as info:
        compile_files(
            {"models/customers.sql": "select 1 as x", "models/o.sql": "select *\nfrom {{ ref('customer') }}"}
        )
    err = info.value
    assert err.path == "models/o.sql" and err.line == 2
    assert "ref('customers')" in str(err)


def test_unknown_source_is_named():
    with pytest.raises(ProjectError, match=r"source\('raw', 'ordrs'\) is not declared"):
        compile_files(
            {"models/sources.yml": SOURCES, "models/o.sql": "select * from {{ source('raw', 'ordrs') }}"}
        )


def test_a_cycle_is_shown_as_a_path():
    with pytest.raises(ProjectError, match="circle: (a -> b -> a|b -> a -> b)"):
        compile_files(
            {"models/a.sql": "select * from {{ ref('b') }}", "models/b.sql": "select * from {{ ref('a') }}"}
        )


@pytest.mark.parametrize(
    "sql,message",
    [
        ("select 1; select 2", "exactly one query"),
        ("drop table analytics.orders", "not a DROP"),
        ("insert into t values (1)", "not a INSERT"),
        ("create table x as select 1", "not a CREATE"),
        ("select 1 as x;\ndelete from t", "exactly one query"),
        ("", "empty"),
        ("select (" * 150 + "1" + ")" * 150, "nests parentheses"),
    ],
)
def test_anything_but_one_query_is_rejected(sql, message):
    with pytest.raises(ProjectError, match=message):
        compile_files({"models/bad.sql": sql})


def test_sql_syntax_error_names_the_source_line():
    """Compiling only renders (as dbt's does); the full parse runs before a model reaches the warehouse."""
    files = {"models/bad.sql": "{{ config(materialized='table') }}\nselect a,\n  b\nfrom t\nwhere (x = 1"}
    manifest = compile_files(files)
    with pytest.raises(ProjectError) as info:
        manifest.check_sql("model.shop.bad")
    assert info.value.path == "models/bad.sql"
    assert "syntax error" in str(info.value).lower()
    assert info.value.line == 5


def test_syntax_errors_map_through_ephemeral_ctes():
    manifest = compile_files({
        "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as x",
        "models/bad.sql": "with t as (select * from {{ ref('eph') }})\nselect x,\nfrom t where",
    })
    with pytest.raises(ProjectError) as info:
        manifest.check_sql("model.shop.bad")
    assert info.value.line == 3


def test_jinja_syntax_error_names_the_line():
    with pytest.raises(ProjectError) as info:
        compile_files({"models/bad.sql": "select 1\n{% if true %}\nas x"})
    assert info.value.line is not None and "Jinja" in str(info.value)


def test_bad_yaml_names_file_and_line():
    with pytest.raises(ProjectError) as info:
        compile_files({"models/schema.yml": "version: 2\nmodels:\n  - name: a\n   description: x\n"})
    assert info.value.path == "models/schema.yml" and info.value.line


def test_generic_tests_get_dbt_names_and_sql():
    m = compile_files(
        {
            "models/o.sql": "select 1 as id, 'a' as status",
            "models/o.yml": "version: 2\nmodels:\n  - name: o\n    columns:\n      - name: id\n"
            "        data_tests: [unique, not_null]\n      - name: status\n        tests:\n"
            "          - accepted_values:\n              values: [a, b]\n",
        }
    )
    names = {n.name for n in m.nodes.values() if n.resource_type == "test"}
    assert names == {"unique_o_id", "not_null_o_id", "accepted_values_o_status__a__b"}


def test_the_fast_path_renders_exactly_as_jinja_does(monkeypatch):
    """Models with only literal calls skip Jinja's compiler; the output must not change by a byte."""
    from pathlib import Path

    from runner.engine.compiler import Compiler, Target, compile_project
    from runner.engine.project import load_project

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "dbt_project_full"
    extra = {
        "models/lit.sql": "{{ config(materialized='table', tags=['a', \"b\"], meta={'x': 1}) }}\n"
        "select {{ var('v', 3) }} as v, {{ var('w', none) }} as w from {{ ref('a') }}",
        "models/a.sql": "select 1 as x -- {{ 'not a call' }} {{ ref('b') }}",
        "models/b.sql": "select '}}' as t, '{{ \"x\" }}' as u",
    }
    fast = compile_project(project(extra), Target())
    jinja_only = {}
    monkeypatch.setattr(Compiler, "_fast_render", lambda self, node, state: None)
    jinja_only = compile_project(project(extra), Target())
    assert fast.compiled == jinja_only.compiled
    assert fast.nodes["model.shop.lit"].config["tags"] == ["a", "b"]
    monkeypatch.undo()
    a = compile_project(load_project(fixture), Target())
    monkeypatch.setattr(Compiler, "_fast_render", lambda self, node, state: None)
    b = compile_project(load_project(fixture), Target())
    assert a.compiled == b.compiled
