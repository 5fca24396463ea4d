"""Preview (issue 5, item 4): rows and types, limits, errors at the analyst's line, read-only,
no files, time limits and deferral, on DuckDB and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from models_service import changes
from models_service.project_files import ModelSpec
from runner import preview
from runner import warehouse as wh
from tests.runner.conftest import MAIN_FILES, commit_to_main, seed_production

pytestmark = pytest.mark.django_db


def run_preview(user, sql, name="my_model", change=None, limit=100):
    return preview.preview_model(user, sql=sql, name=name, change=change, limit=limit)


def failed(user, sql, **kw) -> preview.PreviewFailed:
    with pytest.raises(preview.PreviewFailed) as info:
        run_preview(user, sql, **kw)
    return info.value


def test_preview_returns_rows_and_types(analyst, warehouse):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    result = run_preview(analyst, "select order_id, amount, ordered_on, status\n"
                                  "from {{ ref('stg_orders') }}\norder by order_id")
    assert [c["name"] for c in result["columns"]] == ["order_id", "amount", "ordered_on", "status"]
    types = [c["type"].lower() for c in result["columns"]]
    assert types[0] == "integer" and types[1].startswith(("decimal", "numeric")) and types[2] == "date"
    assert result["rows"][0] == [1, "12.50", "2024-01-02", "shipped"]
    assert result["row_count"] == 3 and result["truncated"] is False
    assert result["elapsed_ms"] > 0
    assert '"analytics"."stg_orders"' in result["compiled_sql"]


def test_limit_truncates_and_is_capped_by_the_setting(analyst, warehouse, settings):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    series = "range(50)" if warehouse.kind == "duckdb" else "generate_series(0, 49)"
    sql = f"select * from {series} as t(n)"
    result = run_preview(analyst, sql, limit=10)
    assert result["row_count"] == 10 and result["truncated"] is True
    assert run_preview(analyst, sql, limit=50)["truncated"] is False
    settings.DMAAS_PREVIEW_MAX_ROWS = 20
    capped = run_preview(analyst, sql, limit=1000)
    assert capped["row_count"] == 20 and capped["truncated"] is True


def test_a_syntax_error_points_at_the_line_of_the_source_through_jinja(analyst, warehouse):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    sql = ("{{ config(materialized='table') }}\n"
           "{% set wanted = 'shipped' %}\n"
           "select\n"
           "  order_id,\n"
           "  from from {{ ref('stg_orders') }}\n"
           "where status = '{{ wanted }}'\n")
    err = failed(analyst, sql)
    # DuckDB's own parser judges before the run; on PostgreSQL sqlglot lets this through and the
    # server's parser answers with a position: either way the line is the analyst's.
    assert err.code == ("compile_error" if warehouse.kind == "duckdb" else "preview_failed")
    assert err.line == 5
    assert "syntax error" in err.message.lower()
    assert err.column is not None


def test_an_unknown_column_from_the_warehouse_points_at_its_line(analyst, warehouse):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    sql = "{{ config(materialized='view') }}\nselect\n  order_id,\n  no_such_column\nfrom {{ ref('stg_orders') }}"
    err = failed(analyst, sql)
    assert err.code == "preview_failed"
    assert err.line == 4
    assert "no_such_column" in err.message
    assert err.column is not None and err.column >= 3


@pytest.mark.parametrize("sql", [
    "select 1 as a; drop table analytics.stg_orders",
    "drop table analytics.stg_orders",
    "copy analytics.stg_orders to '/tmp/dmaas-stolen.csv'",
    "delete from analytics.stg_orders",
    "with x as (select 1) insert into analytics.stg_orders (order_id) select 1",
])
def test_writes_and_ddl_are_refused(analyst, warehouse, sql):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    err = failed(analyst, sql)
    assert err.code == "compile_error"
    assert warehouse.rows("select count(*) from analytics.stg_orders")[0][0] == 3


def test_the_connection_itself_refuses_writes_when_the_parser_is_bypassed(warehouse):
    """Defense in depth: the read-only transaction refuses a write that a SELECT hides (nextval)."""
    warehouse.run("create schema if not exists analytics", "create sequence analytics.seq")
    with pytest.raises(wh.PreviewError) as info:
        wh.get_warehouse().preview("select nextval('analytics.seq') as n", 10)
    assert info.value.code == "preview_failed"
    assert "read" in info.value.message.lower()


def test_duckdb_cannot_read_server_files(analyst, duck):
    commit_to_main(MAIN_FILES)
    seed_production(duck)
    for sql in ("select * from read_csv('/etc/passwd')", "select * from '/etc/passwd'",
                "select content from read_text('/etc/hostname')"):
        err = failed(analyst, sql)
        assert err.code == "preview_failed", sql
        assert "root:" not in err.message
    assert "cannot read files" in failed(analyst, "select * from read_csv('/etc/passwd')").message
    # and not through the warehouse layer without the engine's checks either
    with pytest.raises(wh.PreviewError):
        wh.get_warehouse().preview("select * from read_csv('/etc/passwd')", 10)


def test_postgres_refuses_functions_that_reach_the_server(analyst, postgres_warehouse):
    commit_to_main(MAIN_FILES)
    for sql in ("select pg_read_file('/etc/passwd')", "select set_config('role', 'postgres', false)",
                "select * from pg_ls_dir('.')"):
        err = failed(analyst, sql)
        assert err.code == "preview_failed", sql
        assert "does not allow the function" in err.message


def test_a_slow_query_times_out_with_a_clear_message(analyst, warehouse, settings):
    commit_to_main(MAIN_FILES)
    settings.DMAAS_PREVIEW_TIMEOUT_MS = 300
    if warehouse.kind == "duckdb":
        sql = "select count(*) as n from range(100000000) a, range(100000) b"
    else:
        sql = "select count(*) as n from generate_series(1, 100000000) a, generate_series(1, 1000) b"
    err = failed(analyst, sql)
    assert err.code == "timeout"
    assert "longer than 0.3 seconds" in err.message


def test_unmodified_parents_read_production_and_modified_ones_the_dev_schema(analyst, warehouse):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    warehouse.run("create schema if not exists dev_analyst",
                  "create table dev_analyst.stg_customers (customer_id integer, name varchar, src varchar)",
                  "insert into dev_analyst.stg_customers values (10, 'Ada (dev)', 'dev')",
                  "create table dev_analyst.stg_orders (order_id integer, src varchar)",
                  "insert into dev_analyst.stg_orders values (1, 'dev')")
    change = changes.open_change(analyst, "Customers with names")
    changes.save_model(analyst, change, "stg_customers", "select 10 as customer_id, 'Ada' as name, 1 as x\n",
                       ModelSpec(name="stg_customers"))
    sql = ("select o.src as orders_from, c.src as customers_from\n"
           "from {{ ref('stg_orders') }} o\n"
           "join {{ ref('stg_customers') }} c on c.customer_id = o.customer_id\n"
           "where o.order_id = 1")
    result = run_preview(analyst, sql, change=change.pk)
    assert result["rows"] == [["prod", "dev"]]
    assert '"analytics"."stg_orders"' in result["compiled_sql"]
    assert '"dev_analyst"."stg_customers"' in result["compiled_sql"]
    # without a change, everything is production
    assert run_preview(analyst, sql)["rows"] == [["prod", "prod"]]


def test_a_modified_parent_not_built_yet_says_how_to_build_it(analyst, warehouse):
    commit_to_main(MAIN_FILES)
    seed_production(warehouse)
    change = changes.open_change(analyst, "Customers")
    changes.save_model(analyst, change, "stg_customers", "select 10 as customer_id\n", ModelSpec(name="stg_customers"))
    err = failed(analyst, "select * from {{ ref('stg_customers') }}", change=change.pk)
    assert err.code == "preview_failed"
    assert "Test my model" in err.message and "dev_analyst" in err.message


def test_an_unknown_ref_is_a_compile_error_with_a_suggestion(analyst, duck):
    commit_to_main(MAIN_FILES)
    err = failed(analyst, "select *\nfrom {{ ref('stg_order') }}")
    assert err.code == "compile_error"
    assert err.line == 2
    assert "stg_orders" in err.message


def test_someone_elses_draft_is_not_found(analyst, admin, duck, django_user_model):
    from tests.personas import make_user

    other = make_user("other_analyst", "analyst")
    commit_to_main(MAIN_FILES)
    change = changes.open_change(other, "Mine")
    from models_service.errors import NotFound

    with pytest.raises(NotFound):
        run_preview(analyst, "select 1 as a", change=change.pk)
    assert run_preview(admin, "select 1 as a", change=change.pk)["rows"] == [[1]]


def test_dev_schema_names_are_safe_and_distinct(django_user_model):
    class U:
        def __init__(self, name):
            self.name = name

        def get_username(self):
            return self.name

    assert preview.dev_schema(U("analyst")) == "dev_analyst"
    a, b = preview.dev_schema(U("a.b")), preview.dev_schema(U("a_b"))
    assert a != b and a.startswith("dev_a_b_")
    assert preview.dev_schema(U('x"; drop')).replace("_", "").isalnum()
