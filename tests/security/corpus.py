"""The SELECT-only corpus (RELIABILITY B1), dangerous functions (B2) and unparseable or ambiguous SQL
(B3): every text here must be refused by POST /api/v1/preview with a 400 whose message names what
is refused (any one of `names`, case-insensitive; empty: a 400 is enough).

`writes` marks the texts that would change something if run: with the parser switched off they go
straight to the warehouse's read-only session, which must refuse them too (B1's second half).
"""

from __future__ import annotations

from dataclasses import dataclass

BOTH = ("duckdb", "postgres")
PG = ("postgres",)
DUCK = ("duckdb",)
T = "analytics.stg_orders"


@dataclass(frozen=True)
class Attack:
    id: str
    case: str  # B1 | B2 | B3
    sql: str
    names: tuple[str, ...] = ()
    dialects: tuple[str, ...] = BOTH
    writes: bool = False

    def __str__(self) -> str:
        return self.id


STATEMENTS = ("statement", "command", "only read", "select query", "syntax error")

CORPUS: list[Attack] = [
    # ---------------------------------------------------------------- B1: DML, DDL, DCL
    Attack("insert", "B1", f"insert into {T} (order_id) values (9)", ("insert",), writes=True),
    Attack("update", "B1", f"update {T} set amount = 0", ("update",), writes=True),
    Attack("delete", "B1", f"delete from {T}", ("delete",), writes=True),
    Attack("merge", "B1", f"merge into {T} t using (select 1 as order_id) s on t.order_id = s.order_id "
           "when matched then delete", ("merge",), writes=True),
    Attack("truncate", "B1", f"truncate {T}", ("truncate", "delete", "command"), writes=True),
    Attack("drop", "B1", f"drop table {T}", ("drop",), writes=True),
    Attack("drop-schema", "B1", "drop schema analytics cascade", ("drop",), writes=True),
    Attack("create-table-as", "B1", "create table analytics.stolen as select 1 as x", ("create",), writes=True),
    Attack("create-view", "B1", "create view analytics.v as select 1 as x", ("create",), writes=True),
    Attack("create-schema", "B1", "create schema evil", ("create",), writes=True),
    Attack("create-function", "B1", "create function evil() returns int as 'select 1' language sql",
           ("create",), PG, writes=True),
    Attack("create-macro", "B1", "create macro evil(a) as a + 1", ("create",), DUCK, writes=True),
    Attack("alter", "B1", f"alter table {T} add column pwned int", ("alter",), writes=True),
    Attack("grant", "B1", f"grant select on {T} to public", ("grant", "command"), PG, writes=True),
    Attack("revoke", "B1", f"revoke select on {T} from public", ("revoke", "command"), PG, writes=True),
    Attack("create-role", "B1", "create role evil superuser", ("create", "command"), PG, writes=True),
    Attack("refresh-matview", "B1", "refresh materialized view analytics.mv", ("refresh", "command"), PG),
    # ---------------------------------------------------------------- B1: stacked statements
    Attack("stacked-drop", "B1", f"select 1 as a; drop table {T}", ("statements",), writes=True),
    Attack("stacked-select", "B1", "select 1 as a; select 2 as b", ("statements",)),
    Attack("stacked-double-semicolon", "B1", f"select 1 as a;;delete from {T}", ("statements",), writes=True),
    Attack("stacked-values", "B1", f"values (1); delete from {T}", ("statements",), writes=True),
    Attack("stacked-newline", "B1", f"select 1 as a\n;\n\ninsert into {T} (order_id) values (9)",
           ("statements",), writes=True),
    Attack("wrapper-breakout", "B1", f"select 1 as a) as t; drop table {T}; select * from (select 1",
           STATEMENTS, writes=True),
    # ---------------------------------------------------------------- B1: writes hidden in queries
    Attack("cte-delete", "B1", f"with d as (delete from {T} returning *) select * from d",
           ("delete", "data-modifying", "syntax error"), writes=True),
    Attack("cte-insert", "B1", f"with x as (select 1) insert into {T} (order_id) select 1",
           ("insert",), writes=True),
    Attack("cte-update", "B1", f"with u as (update {T} set amount = 0 returning 1) select * from u",
           ("update", "data-modifying", "syntax error"), writes=True),
    Attack("select-into", "B1", f"select * into analytics.stolen from {T}",
           ("into", "create", "syntax error"), writes=True),
    Attack("select-into-temp", "B1", f"select * into temporary stolen from {T}",
           ("into", "create", "syntax error"), PG, writes=True),
    Attack("explain", "B1", "explain select 1", ("explain", "command")),
    Attack("explain-analyze-delete", "B1", f"explain analyze delete from {T}",
           ("explain", "command", "delete"), writes=True),
    Attack("for-update", "B1", f"select * from {T} for update", ("for update", "lock", "syntax error")),
    Attack("for-share", "B1", f"select * from {T} for share", ("for share", "lock", "syntax error")),
    Attack("for-no-key-update", "B1", f"select * from {T} for no key update",
           ("for no key update", "lock", "syntax error"), PG),
    Attack("nextval", "B1", "select nextval('analytics.seq') as n", ("nextval", "only read", "write"),
           writes=True),
    # ---------------------------------------------------------------- B1: COPY, DO, SET, CALL, PREPARE
    Attack("copy-to-file", "B1", f"copy {T} to '/tmp/dmaas-stolen.csv'", ("copy",), writes=True),
    Attack("copy-query-to-file", "B1", "copy (select 1) to '/tmp/dmaas-stolen.csv'", ("copy",), writes=True),
    Attack("copy-program", "B1", "copy (select 1) to program 'touch /tmp/dmaas-pwned'", ("copy",), PG,
           writes=True),
    Attack("copy-from-file", "B1", f"copy {T} from '/etc/passwd'", ("copy",), writes=True),
    Attack("do-block", "B1", f"do $$ begin delete from {T}; end $$", ("do", "command"), PG, writes=True),
    Attack("set-role", "B1", "set role postgres", ("set",), PG),
    Attack("set-timeout", "B1", "set statement_timeout = 0", ("set",), PG),
    Attack("set-config-duckdb", "B1", "set enable_external_access = true", ("set",), DUCK),
    Attack("reset-all", "B1", "reset all", ("reset", "set", "command")),
    Attack("call", "B1", "call evil()", ("call", "command")),
    Attack("prepare", "B1", f"prepare p as delete from {T}", ("prepare", "command"), writes=True),
    Attack("execute", "B1", "execute p", ("execute", "command")),
    Attack("begin", "B1", "begin", ("begin", "transaction", "command")),
    Attack("commit-then-write", "B1", f"commit; delete from {T}", ("statements",), writes=True),
    Attack("lock-table", "B1", f"lock table {T}", ("lock", "command"), PG),
    Attack("vacuum", "B1", "vacuum", ("vacuum", "command")),
    Attack("analyze", "B1", "analyze", ("analyze", "command")),
    Attack("checkpoint", "B1", "checkpoint", ("checkpoint", "command")),
    Attack("listen", "B1", "listen evil", ("listen", "command"), PG),
    Attack("pragma", "B1", "pragma database_list", ("pragma",), DUCK),
    Attack("export-database", "B1", "export database '/tmp/dmaas-export'", ("export",), DUCK, writes=True),
    Attack("use", "B1", "use memory", ("use", "set"), DUCK),
    # ---------------------------------------------------------------- B1: comment and case tricks
    Attack("comment-block-prefix", "B1", f"/* select */ delete from {T}", ("delete",), writes=True),
    Attack("comment-line-prefix", "B1", f"-- select 1\ndelete from {T}", ("delete",), writes=True),
    Attack("comment-hides-semicolon", "B1", f"select 1 as a /* ; */ ; drop table {T}", ("statements",),
           writes=True),
    Attack("string-hides-nothing", "B1", f"select ';' as a; drop table {T} -- '", ("statements",), writes=True),
    Attack("mixed-case", "B1", f"DeLeTe FrOm {T}", ("delete",), writes=True),
    Attack("mixed-case-stacked", "B1", f"sElEcT 1 aS a; DrOp TaBlE {T}", ("statements",), writes=True),
    Attack("nested-comment", "B1", f"/* /* */ select 1 */ drop table {T}", ("drop", "syntax error"),
           PG, writes=True),
    Attack("dollar-quote-stacked", "B1", f"select $x$;$x$ as a; drop table {T}", ("statements",), PG,
           writes=True),
    Attack("e-string-stacked", "B1", f"select E'\\'' as a; drop table {T}; --'", ("statements",), PG,
           writes=True),
    Attack("jinja-built-drop", "B1", "{{ 'dr' ~ 'op' }} table " + T, ("drop",), writes=True),
    # ---------------------------------------------------------------- B2: PostgreSQL functions
    Attack("pg_read_file", "B2", "select pg_read_file('/etc/passwd')", ("pg_read_file",), PG),
    Attack("pg_read_binary_file", "B2", "select pg_read_binary_file('/etc/passwd')", ("pg_read_binary_file",),
           PG),
    Attack("pg_read_file-qualified", "B2", "select pg_catalog.pg_read_file('/etc/passwd')", ("pg_read_file",),
           PG),
    Attack("pg_read_file-quoted", "B2", "select \"pg_read_file\"('/etc/passwd')", ("pg_read_file",), PG),
    Attack("pg_read_file-upper", "B2", "SELECT PG_READ_FILE('/etc/passwd')", ("pg_read_file",), PG),
    Attack("pg_ls_dir", "B2", "select * from pg_ls_dir('.')", ("pg_ls_dir",), PG),
    Attack("pg_stat_file", "B2", "select pg_stat_file('/etc/passwd')", ("pg_stat_file",), PG),
    Attack("lo_import", "B2", "select lo_import('/etc/passwd')", ("lo_import",), PG, writes=True),
    Attack("lo_export", "B2", "select lo_export(1, '/tmp/dmaas-lo')", ("lo_export",), PG, writes=True),
    Attack("lo_get", "B2", "select lo_get(1)", ("lo_get",), PG),
    Attack("query_to_xml", "B2", f"select query_to_xml('delete from {T}', true, true, '')", ("query_to_xml",),
           PG, writes=True),
    Attack("table_to_xml", "B2", f"select table_to_xml('{T}', true, true, '')", ("table_to_xml",), PG),
    Attack("dblink", "B2", "select * from dblink('dbname=postgres', 'select 1') as t(a int)", ("dblink",), PG),
    Attack("dblink_exec", "B2", "select dblink_exec('dbname=postgres', 'drop table x')", ("dblink_exec",), PG),
    Attack("set_config", "B2", "select set_config('role', 'postgres', false)", ("set_config",), PG),
    Attack("current_setting", "B2", "select current_setting('data_directory')", ("current_setting",), PG),
    Attack("pg_sleep", "B2", "select pg_sleep(60)", ("pg_sleep",), PG),
    Attack("pg_sleep-in-where", "B2", f"select * from {T} where pg_sleep(60) is not null", ("pg_sleep",), PG),
    Attack("pg_terminate_backend", "B2", "select pg_terminate_backend(1)", ("pg_terminate_backend",), PG),
    Attack("pg_reload_conf", "B2", "select pg_reload_conf()", ("pg_reload_conf",), PG),
    Attack("pg_advisory_lock", "B2", "select pg_advisory_lock(1)", ("pg_advisory_lock",), PG),
    Attack("pg_notify", "B2", "select pg_notify('c', 'x')", ("pg_notify",), PG),
    Attack("txid_current", "B2", "select txid_current()", ("txid_current",), PG),
    Attack("function-in-cte", "B2", "with x as (select pg_read_file('/etc/passwd') as f) select * from x",
           ("pg_read_file",), PG),
    Attack("function-in-subquery", "B2", "select (select pg_ls_dir('.') limit 1) as f", ("pg_ls_dir",), PG),
    # ---------------------------------------------------------------- B2: DuckDB files, network, extensions
    Attack("read_csv", "B2", "select * from read_csv('/etc/passwd')", ("read_csv", "cannot read files"), DUCK),
    Attack("read_csv_auto", "B2", "select * from read_csv_auto('/etc/passwd')",
           ("read_csv_auto", "cannot read files"), DUCK),
    Attack("read_text", "B2", "select content from read_text('/etc/hostname')",
           ("read_text", "cannot read files"), DUCK),
    Attack("read_blob", "B2", "select content from read_blob('/etc/hostname')",
           ("read_blob", "cannot read files"), DUCK),
    Attack("read_json", "B2", "select * from read_json('/etc/hostname')", ("read_json", "cannot read files"),
           DUCK),
    Attack("read_parquet", "B2", "select * from read_parquet('/tmp/x.parquet')",
           ("read_parquet", "cannot read files"), DUCK),
    Attack("replacement-scan", "B2", "select * from '/etc/passwd'", ("cannot read files", "does not exist"), DUCK),
    Attack("glob", "B2", "select * from glob('/*')", ("glob", "cannot read files"), DUCK),
    Attack("read_csv-url", "B2", "select * from read_csv('http://127.0.0.1:9/x.csv')",
           ("read_csv", "cannot read files"), DUCK),
    Attack("attach", "B2", "attach '/tmp/dmaas-evil.duckdb' as evil", ("attach",), DUCK, writes=True),
    Attack("detach", "B2", "detach warehouse", ("detach",), DUCK),
    Attack("install", "B2", "install httpfs", ("install", "extension"), DUCK),
    Attack("load", "B2", "load httpfs", ("load",), DUCK),
    Attack("copy-to-duckdb", "B2", f"copy (select * from {T}) to '/tmp/dmaas-stolen.parquet' (format parquet)",
           ("copy",), DUCK, writes=True),
    Attack("getenv", "B2", "select getenv('HOME') as home", ("getenv", "cannot read files", "does not exist"),
           DUCK),
    Attack("create-secret", "B2", "create secret s (type s3, key_id 'x', secret 'y')", ("create",), DUCK),
    Attack("unknown-function", "B2", "select dmaas_no_such_function(1) as x", ("dmaas_no_such_function",)),
    # ---------------------------------------------------------------- B3: unparseable or ambiguous
    Attack("typo", "B3", "selec 1", ("syntax error", "statement", "command")),
    Attack("open-paren", "B3", "select (", ("syntax error",)),
    Attack("dangling-from", "B3", "select 1 from", ("syntax error",)),
    Attack("unterminated-string", "B3", "select 'abc", ("syntax error", "unterminated")),
    Attack("unterminated-comment", "B3", "select 1 /* never closed", ("syntax error", "unterminated")),
    Attack("unterminated-dollar", "B3", "select $$abc", ("syntax error", "unterminated")),
    Attack("nul-byte", "B3", f"select 1 as a\x00; drop table {T}", ("syntax error", "statements", "nul", "0x00"),
           writes=True),
    Attack("only-comment", "B3", "-- nothing here", ("syntax error", "empty", "statement")),
    Attack("backtick-dialect", "B3", "select `a` from `t`", ("syntax error", "does not exist")),
    Attack("unbalanced-close", "B3", "select 1)", ("syntax error",)),
]


def attacks_for(dialect: str) -> list[Attack]:
    return [a for a in CORPUS if dialect in a.dialects]
