"""Each diagnostic of the editor's validation, at the right place in the analyst's own text."""

from __future__ import annotations

import pytest

from models_service import changes
from models_service.project_files import ModelSpec
from tests.validation.conftest import apply_fix, check, commit_main, only

pytestmark = pytest.mark.django_db


def test_a_correct_model_has_no_diagnostics_and_lists_refs_sources_and_columns(analyst, project):
    result = check(analyst, "select o.id, o.amount, c.name\nfrom {{ ref('stg_orders') }} o\n"
                            "join {{ ref('stg_customers') }} c on c.id = o.customer_id")
    assert result["diagnostics"] == []
    assert result["refs"] == ["stg_customers", "stg_orders"]
    assert result["columns"] == [{"name": "id", "type": "integer"}, {"name": "amount", "type": "decimal(10,2)"},
                                 {"name": "name", "type": None}]
    assert result["elapsed_ms"] > 0


def test_jinja_syntax_error_is_reported_at_its_line(analyst, project):
    result = check(analyst, "select id\nfrom {{ ref('stg_orders') }}\n{% if true %}\nwhere id > 1\n")
    [diag] = result["diagnostics"]
    assert diag["code"] == "jinja" and diag["severity"] == "error"
    assert "endif" in diag["message"]


def test_unclosed_expression_points_at_its_opening_braces(analyst, project):
    [diag] = check(analyst, "select id\nfrom {{ ref('stg_orders') \nwhere 1 = 1")["diagnostics"]
    assert diag["code"] == "jinja"
    assert (diag["line"], diag["column"], diag["end_column"]) == (2, 6, 8)
    assert "never closed" in diag["message"]


def test_undefined_macro_is_named_with_did_you_mean_and_a_fix(analyst, project):
    text = "select id,\n  {{ cent_to_dollars('amount') }} as dollars\nfrom {{ ref('stg_orders') }}"
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "jinja"
    assert "cent_to_dollars is not defined" in diag["message"] and "cents_to_dollars" in diag["message"]
    assert (diag["line"], diag["column"], diag["end_column"]) == (2, 6, 21)
    assert "{{ cents_to_dollars('amount') }}" in apply_fix(text, diag["fixes"][0])


def test_project_macros_render(analyst, project):
    result = check(analyst, "select {{ cents_to_dollars('amount') }} as dollars from {{ ref('stg_orders') }}")
    assert result["diagnostics"] == []
    assert result["columns"] == [{"name": "dollars", "type": None}]


@pytest.mark.parametrize("block", [
    "{% set statuses = [\n    'placed',\n    'shipped',\n] %}",
    "{{ config(\n    materialized='table',\n    tags=['daily'],\n) }}",
])
def test_sql_error_after_a_multi_line_jinja_block_is_at_its_source_line(analyst, project, block):
    text = "-- orders by status\n" + block + "\nselect id, amount\nfrom {{ ref('stg_orders') }} where amount > > 3\n"
    lines = text.split("\n")
    assert lines[6].startswith("from")  # line 7 of the source; the rendered SQL has fewer lines
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "syntax" and diag["severity"] == "error"
    assert diag["line"] == 7
    assert lines[6][diag["column"] - 1:diag["end_column"] - 1] == ">"
    assert diag["column"] == lines[6].rindex(">") + 1


def test_error_after_a_jinja_loop_maps_to_the_source(analyst, project):
    text = ("{% set cols = ['id', 'amount'] %}\nselect\n{% for c in cols -%}\n  {{ c }},\n{%- endfor %}\n"
            "  statuz\nfrom {{ ref('stg_orders') }}")
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "unknown_column"
    assert (diag["line"], diag["column"], diag["end_column"]) == (6, 3, 9)
    assert "status" in diag["message"]


def test_misspelt_keyword_is_pointed_at_with_a_fix(analyst, project):
    text = "select id, amount\nform {{ ref('stg_orders') }}"
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "syntax" and (diag["line"], diag["column"], diag["end_column"]) == (2, 1, 5)
    assert apply_fix(text, diag["fixes"][0]).startswith("select id, amount\nfrom ")


def test_syntax_is_checked_in_the_postgres_dialect(analyst, project, settings):
    settings.DMAAS_WAREHOUSE = "postgresql://localhost/warehouse"
    [diag] = check(analyst, "select id\nfrom {{ ref('stg_orders') }}\nwhere id = = 1")["diagnostics"]
    assert diag["code"] == "syntax" and diag["line"] == 3


def test_duckdb_syntax_is_accepted_on_duckdb(analyst, project):
    result = check(analyst, "select * exclude (status) from {{ ref('stg_orders') }}")
    assert result["diagnostics"] == []
    assert [c["name"] for c in result["columns"]] == ["id", "customer_id", "amount"]


def test_more_than_one_statement_is_an_error(analyst, project):
    [diag] = check(analyst, "select 1 as a;\nselect 2 as b")["diagnostics"]
    assert diag["code"] == "multiple_statements" and diag["line"] == 1


@pytest.mark.parametrize("sql, word", [("delete from raw.orders", "DELETE"),
                                       ("create table x as select 1", "CREATE")])
def test_anything_but_a_query_is_an_error(analyst, project, sql, word):
    [diag] = check(analyst, sql)["diagnostics"]
    assert diag["code"] == "not_a_query" and word in diag["message"]


def test_an_empty_model_is_an_error(analyst, project):
    assert only(check(analyst, "  \n"), "not_a_query")


def test_unknown_ref_has_did_you_mean_and_a_fix(analyst, project):
    text = "select id\nfrom {{ ref('stg_order') }}"
    result = check(analyst, text)
    [diag] = only(result, "unknown_ref")
    assert diag["severity"] == "error" and "ref('stg_orders')" in diag["message"]
    assert diag["line"] == 2
    assert apply_fix(text, diag["fixes"][0]) == "select id\nfrom {{ ref('stg_orders') }}"


def test_unknown_source_has_did_you_mean(analyst, project):
    text = "select id from {{ source('raw', 'order') }}"
    [diag] = only(check(analyst, text), "unknown_source")
    assert "source('raw', 'orders')" in diag["message"]
    assert apply_fix(text, diag["fixes"][0]) == "select id from {{ source('raw', 'orders') }}"


def test_unknown_column_of_a_parent_whose_sql_names_its_columns_is_an_error(analyst, project):
    text = "select id, amout\nfrom {{ ref('stg_orders') }}"
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "unknown_column" and diag["severity"] == "error"
    assert (diag["line"], diag["column"], diag["end_column"]) == (1, 12, 17)
    assert "Did you mean amount" in diag["message"]
    assert apply_fix(text, diag["fixes"][0]) == "select id, amount\nfrom {{ ref('stg_orders') }}"


def test_qualified_unknown_column_in_a_join_is_found(analyst, project):
    result = check(analyst, "select c.nam, o.id\nfrom {{ ref('stg_customers') }} c\n"
                            "join {{ ref('stg_orders') }} o on o.customer_id = c.id")
    [diag] = result["diagnostics"]
    assert diag["code"] == "unknown_column" and "c.nam" in diag["message"] and "name" in diag["message"]


def test_columns_known_only_from_yml_give_a_warning_not_an_error(analyst, project):
    [diag] = check(analyst, "select legacy_idd from {{ ref('legacy') }}")["diagnostics"]
    assert diag["code"] == "unknown_column" and diag["severity"] == "warning"
    assert "documented columns" in diag["message"]


def test_no_false_positive_when_a_parents_columns_are_unknown(analyst, project):
    result = check(analyst, "select e.anything, o.id\nfrom {{ ref('events_all') }} e\n"
                            "join {{ ref('stg_orders') }} o on o.id = e.order_id\nwhere whatever > 1")
    assert not only(result, "unknown_column")
    [info] = only(result, "columns_unknown")
    assert info["severity"] == "info" and "events_all" in info["message"] and info["line"] == 2


def test_columns_through_ctes_and_stars_are_checked(analyst, project):
    text = ("with o as (select * from {{ ref('stg_orders') }}),\n"
            "t as (select customer_id, sum(amount) as total from o group by 1)\n"
            "select customer_id, totl from t")
    [diag] = check(analyst, text)["diagnostics"]
    assert diag["code"] == "unknown_column" and "the CTE t" in diag["message"] and diag["line"] == 3


def test_select_aliases_and_lambdas_are_not_unknown_columns(analyst, project):
    result = check(analyst, "select amount * 2 as doubled, list_transform([1, 2], x -> x + 1) as l\n"
                            "from {{ ref('stg_orders') }}\nwhere doubled > 3\norder by doubled")
    assert result["diagnostics"] == []


def test_a_ref_that_closes_a_circle_is_an_error(analyst, project):
    text = "select customer_id from {{ ref('customer_report') }}"
    [diag] = only(check(analyst, text, name="stg_orders"), "cycle")
    assert diag["severity"] == "error"
    assert "stg_orders → customer_report → order_totals → stg_orders" in diag["message"]
    assert diag["line"] == 1 and diag["column"] == 28


def test_a_model_that_refs_itself_is_a_cycle(analyst, project):
    assert only(check(analyst, "select 1 as a from {{ ref('stg_orders') }}", name="stg_orders"), "cycle")


def test_removing_a_column_that_downstream_models_use_is_a_breaking_change(analyst, project):
    result = check(analyst, "select id, customer_id, status\nfrom {{ source('raw', 'orders') }}", name="stg_orders")
    [diag] = only(result, "breaking_change")
    assert diag["severity"] == "warning"
    assert "removes amount" in diag["message"] and "order_totals" in diag["message"]


def test_renaming_a_column_names_the_rename_and_the_models(analyst, project):
    text = "select customer_id, sum(o.amount) as grand_total\nfrom {{ ref('stg_orders') }} o\ngroup by 1"
    [diag] = only(check(analyst, text, name="order_totals"), "breaking_change")
    assert "renames total to grand_total" in diag["message"] and "customer_report" in diag["message"]
    assert diag["line"] == 1 and "grand_total" in text.split("\n")[0][diag["column"] - 1:diag["end_column"] - 1]


def test_a_column_no_one_uses_can_go(analyst, project):
    result = check(analyst, "select id, customer_id, amount\nfrom {{ source('raw', 'orders') }}", name="stg_orders")
    assert not only(result, "breaking_change")


@pytest.mark.parametrize("written, replacement", [
    ("analytics.stg_orders", "{{ ref('stg_orders') }}"),
    ("stg_orders", "{{ ref('stg_orders') }}"),
    ("raw.customers", "{{ source('raw', 'customers') }}"),
    ('"raw"."customers"', "{{ source('raw', 'customers') }}"),
])
def test_plain_table_names_of_models_and_sources_get_a_fix(analyst, project, written, replacement):
    text = f"select x.id\nfrom {written} as x\nwhere x.id > 0"
    [diag] = only(check(analyst, text), "plain_table")
    assert diag["severity"] == "warning" and diag["line"] == 2
    fixed = apply_fix(text, diag["fixes"][0])
    assert fixed == f"select x.id\nfrom {replacement} as x\nwhere x.id > 0"
    assert check(analyst, fixed)["diagnostics"] == []


def test_pasted_sql_with_several_plain_tables_becomes_a_model(analyst, project):
    text = "select o.id, c.name\nfrom analytics.stg_orders o\njoin raw.customers c on c.id = o.customer_id"
    result = check(analyst, text)
    fixes = [d["fixes"][0] for d in only(result, "plain_table")]
    assert len(fixes) == 2
    for fix in sorted(fixes, key=lambda f: (f["replace"]["line"], f["replace"]["column"]), reverse=True):
        text = apply_fix(text, fix)
    assert text == ("select o.id, c.name\nfrom {{ ref('stg_orders') }} o\n"
                    "join {{ source('raw', 'customers') }} c on c.id = o.customer_id")
    assert check(analyst, text)["diagnostics"] == []


def test_a_table_that_is_neither_model_nor_source_gets_a_warning(analyst, project):
    [diag] = only(check(analyst, "select id from analytics.stg_orderz"), "unknown_table")
    assert diag["severity"] == "warning" and "stg_orders" in diag["message"]


def test_the_change_branch_is_what_the_model_is_checked_against(analyst, project):
    change = changes.open_change(analyst, "New models")
    changes.save_model(analyst, change, "daily_revenue", "select 1 as day, 2 as revenue\n", ModelSpec("daily_revenue"))
    text = "select day, revenu from {{ ref('daily_revenue') }}"
    on_change = check(analyst, text, change=change)
    [diag] = on_change["diagnostics"]
    assert diag["code"] == "unknown_column" and "revenue" in diag["message"]
    on_main = check(analyst, text)
    assert only(on_main, "unknown_ref")


def test_a_saved_edit_is_seen_by_the_next_check(analyst, project):
    change = changes.open_change(analyst, "Edit orders")
    text = "select id, amount, discount from {{ ref('stg_orders') }}"
    assert only(check(analyst, text, change=change), "unknown_column")
    changes.save_model(analyst, change, "stg_orders",
                       "select id, customer_id, amount, status, 0 as discount\nfrom {{ source('raw', 'orders') }}\n",
                       ModelSpec("stg_orders"))
    change.refresh_from_db()
    assert check(analyst, text, change=change)["diagnostics"] == []


def test_broken_macros_are_a_warning_not_a_crash(analyst, project):
    commit_main({"macros/broken.sql": "{% macro oops( %}"})
    result = check(analyst, "select id from {{ ref('stg_orders') }}")
    [diag] = result["diagnostics"]
    assert diag["code"] == "jinja" and diag["severity"] == "warning" and "macros" in diag["message"]


def test_deep_nesting_is_refused_before_parsing(analyst, project):
    [diag] = check(analyst, "select " + "(" * 5000 + "1" + ")" * 5000)["diagnostics"]
    assert diag["code"] == "syntax" and "deep" in diag["message"]
