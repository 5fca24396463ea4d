"""Print (or, with --apply, run) the SQL that gives a PostgreSQL warehouse its two logins.

- The production role (the user of DMAAS_WAREHOUSE) owns the copy's schemas: production, its
  `<production>_*` folders, `dev_*` and `ci_*` (with the copy's prefix), and may create schemas.
- The preview role (the user of DMAAS_PREVIEW_WAREHOUSE_URL) may only read: USAGE and SELECT on what
  the production role makes (default privileges) and on the source schemas named; read-only
  transactions and a statement timeout by default; no CREATE anywhere, no temporary tables, no
  CONNECT on the portal's own database (or, when the portal's tables live in the warehouse database,
  no USAGE on their schemas).

Role names, passwords and the database come from the two URLs, so the SQL matches the settings the
processes run with. Printed SQL carries no password (set them with `\\password`); --apply sends them
hashed by libpq, never in clear text. Everything is idempotent: run it again after adding a source
schema or moving to a new copy. docs/warehouse-roles.md explains each statement.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

_PG = ("postgresql://", "postgres://")


@dataclass
class Login:
    user: str
    password: str | None
    host: str
    port: int
    database: str


def parse_login(url: str, what: str) -> Login:
    if not url.startswith(_PG):
        raise CommandError(f"{what} must be a postgresql:// URL.")
    parts = urlsplit(url)
    user, database = unquote(parts.username or ""), unquote(parts.path.lstrip("/"))
    if not user or not database:
        raise CommandError(f"{what} must name a user and a database (postgresql://user:pw@host/db).")
    return Login(user, unquote(parts.password) if parts.password else None, parts.hostname or "localhost",
                 parts.port or 5432, database)


@dataclass
class RolePlan:
    """Everything the SQL depends on; built from settings, overridden by options."""

    database: str
    owner: str
    preview: str
    production_schema: str
    schema_prefix: str = ""
    source_schemas: list[str] = field(default_factory=list)
    timeout_ms: int = 30_000
    portal_database: str | None = None  # a database of its own on this server
    portal_role: str | None = None
    portal_schemas: list[str] = field(default_factory=list)  # portal tables inside the warehouse database
    preview_connection_limit: int = 50

    def check(self) -> None:
        names = [self.database, self.owner, self.preview, self.production_schema, *self.source_schemas,
                 *self.portal_schemas, self.portal_database or "x", self.portal_role or "x"]
        for name in names:
            if not name or len(name) > 63 or "\x00" in name:
                raise CommandError(f"{name!r} is not a PostgreSQL name.")
        if self.owner == self.preview:
            raise CommandError("The preview login must be a role of its own, not the warehouse's.")
        if self.portal_role in (self.owner, self.preview):
            raise CommandError(f"The portal's database login {self.portal_role!r} must differ from the "
                               "warehouse's roles, or nothing keeps previews from the portal's tables.")
        if self.portal_schemas and self.portal_role is None:
            raise CommandError("--portal-schema needs the portal's login (--portal-role).")


def statements(plan: RolePlan, passwords: dict[str, str] | None = None) -> list[tuple[str, object]]:
    """(comment, statement) pairs; statements are psycopg `sql.Composable`, comments plain text."""
    from psycopg import sql

    plan.check()
    ident, lit = sql.Identifier, sql.Literal
    owner, preview, db = ident(plan.owner), ident(plan.preview), ident(plan.database)
    out: list[tuple[str, object]] = []

    def add(comment: str, text: str, **parts: object) -> None:
        out.append((comment, sql.SQL(text).format(**parts)))

    def do(comment: str, body: str, **parts: object) -> None:
        inner = sql.SQL(body).format(**parts)
        out.append((comment, sql.Composed([sql.SQL("DO $dmaas$ "), inner, sql.SQL(" $dmaas$")])))

    for role in (plan.owner, plan.preview):
        do(f"the role {role}, if it is missing",
           "BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN CREATE ROLE {role}; END IF; END",
           name=lit(role), role=ident(role))
    add("production: logs in, owns its schemas, nothing more",
        "ALTER ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS", owner=owner)
    add("previews: logs in, inherits nothing, a bounded number of sessions",
        "ALTER ROLE {preview} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT "
        "CONNECTION LIMIT {limit}", preview=preview, limit=lit(plan.preview_connection_limit))
    for role in (plan.owner, plan.preview):
        if passwords and passwords.get(role):
            add(f"the password of {role}, hashed by libpq", "ALTER ROLE {role} PASSWORD {hashed}",
                role=ident(role), hashed=lit(passwords[role]))
    add("previews: read-only transactions unless a session asks otherwise (the grants below are the boundary)",
        "ALTER ROLE {preview} SET default_transaction_read_only = on", preview=preview)
    add("previews: every statement is cancelled after this many milliseconds",
        "ALTER ROLE {preview} SET statement_timeout = {ms}", preview=preview, ms=lit(int(plan.timeout_ms)))
    add("previews: an abandoned transaction does not hold locks for long",
        "ALTER ROLE {preview} SET idle_in_transaction_session_timeout = {ms}", preview=preview,
        ms=lit(max(int(plan.timeout_ms) * 2, 10_000)))

    add("the warehouse database: no temporary tables for roles not named here",
        "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC", db=db)
    add("production connects, creates schemas (dev_*, ci_*) and temporary tables",
        "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {db} TO {owner}", db=db, owner=owner)
    add("previews connect, and nothing else", "GRANT CONNECT ON DATABASE {db} TO {preview}", db=db, preview=preview)
    add("previews create nothing in the database either",
        "REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM {preview}", db=db, preview=preview)
    add("nobody creates objects in public (the default before PostgreSQL 15)",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    add("large objects are written even in read-only transactions, and no privilege guards their creation: "
        "nobody but superusers makes them in this database",
        "REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea) FROM PUBLIC")

    add("the production schema, owned by production",
        "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner}",
        schema=ident(plan.production_schema), owner=owner)
    prod, prefix = plan.production_schema, plan.schema_prefix
    patterns = [_like(prod) + "\\_%", _like(prefix + "dev_") + "%", _like(prefix + "ci_") + "%"]
    do("this copy's schemas that exist (production, its folders, dev_*, ci_*): owned by production, "
       "their tables too (the build swaps tables by renaming them), readable by previews",
       "DECLARE s record; r record; BEGIN "
       "FOR s IN SELECT nspname FROM pg_namespace WHERE nspname = {prod} OR nspname LIKE {p1} "
       "OR nspname LIKE {p2} OR nspname LIKE {p3} LOOP "
       "EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.nspname, {owner}); "
       "FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
       "WHERE n.nspname = s.nspname AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP "
       "EXECUTE format(CASE r.relkind WHEN 'v' THEN 'ALTER VIEW %I.%I OWNER TO %I' "
       "WHEN 'm' THEN 'ALTER MATERIALIZED VIEW %I.%I OWNER TO %I' "
       "WHEN 'f' THEN 'ALTER FOREIGN TABLE %I.%I OWNER TO %I' ELSE 'ALTER TABLE %I.%I OWNER TO %I' END, "
       "s.nspname, r.relname, {owner}); "
       "END LOOP; "
       "EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s.nspname, {preview}); "
       "EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s.nspname, {preview}); "
       "END LOOP; END",
       prod=lit(prod), p1=lit(patterns[0]), p2=lit(patterns[1]), p3=lit(patterns[2]),
       owner=lit(plan.owner), preview=lit(plan.preview))
    add("schemas production makes from now on (a new analyst's dev_ schema) are readable by previews",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE ON SCHEMAS TO {preview}", owner=owner, preview=preview)
    add("and so are the tables and views it makes",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT SELECT ON TABLES TO {preview}", owner=owner, preview=preview)

    for schema in plan.source_schemas:
        s = ident(schema)
        add(f"source schema {schema} (raw data loaded by others): read by builds and previews",
            "CREATE SCHEMA IF NOT EXISTS {s}", s=s)
        add("", "GRANT USAGE ON SCHEMA {s} TO {owner}, {preview}", s=s, owner=owner, preview=preview)
        add("", "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {owner}, {preview}", s=s, owner=owner, preview=preview)
        add("tables loaded into it later, by whoever runs this",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {owner}, {preview}",
            s=s, owner=owner, preview=preview)

    if plan.portal_database and plan.portal_database != plan.database:
        pdb = ident(plan.portal_database)
        add(f"the portal's database {plan.portal_database}: only its own login connects",
            "REVOKE CONNECT, TEMPORARY ON DATABASE {pdb} FROM PUBLIC", pdb=pdb)
        add("", "REVOKE ALL ON DATABASE {pdb} FROM {owner}, {preview}", pdb=pdb, owner=owner, preview=preview)
        if plan.portal_role:
            add("", "GRANT CONNECT, TEMPORARY ON DATABASE {pdb} TO {portal}", pdb=pdb, portal=ident(plan.portal_role))
    for schema in plan.portal_schemas:
        s, portal = ident(schema), ident(plan.portal_role or "")
        add(f"the portal's schema {schema} in the warehouse database: only the portal's login enters it",
            "REVOKE ALL ON SCHEMA {s} FROM PUBLIC, {owner}, {preview}", s=s, owner=owner, preview=preview)
        add("", "GRANT USAGE, CREATE ON SCHEMA {s} TO {portal}", s=s, portal=portal)
        add("", "REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC, {owner}, {preview}",
            s=s, owner=owner, preview=preview)
    return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def plan_from_settings(options: dict) -> tuple[RolePlan, Login, Login]:
    warehouse = parse_login(options["warehouse_url"] or str(settings.DMAAS_WAREHOUSE), "The warehouse URL")
    preview_url = options["preview_url"] or str(getattr(settings, "DMAAS_PREVIEW_WAREHOUSE", "") or "")
    if not preview_url:
        raise CommandError("Set DMAAS_PREVIEW_WAREHOUSE_URL (or --preview-url) to the preview login, e.g. "
                           "postgresql://dmaas_preview:PASSWORD@host/warehouse.")
    preview = parse_login(preview_url, "The preview URL")
    if (preview.host, preview.port, preview.database) != (warehouse.host, warehouse.port, warehouse.database):
        raise CommandError("The preview URL must reach the warehouse's server and database.")
    portal_database, portal_role = options["portal_database"], options["portal_role"]
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        same_server = (str(db.get("HOST") or "localhost"), int(db.get("PORT") or 5432)) == (
            warehouse.host, warehouse.port)
        if same_server and portal_database is None:
            portal_database = str(db["NAME"])
        if portal_role is None:
            portal_role = str(db.get("USER") or "") or None
    schemas = list(options["portal_schema"] or [])
    if portal_database == warehouse.database and not schemas:
        schemas = ["public"]  # Django's tables land in the login's search_path: public by default
    plan = RolePlan(
        database=warehouse.database,
        owner=warehouse.user,
        preview=preview.user,
        production_schema=options["production_schema"] or str(settings.DMAAS_PRODUCTION_SCHEMA),
        schema_prefix=str(getattr(settings, "DMAAS_SCHEMA_PREFIX", "")),
        source_schemas=list(options["source_schema"] or []),
        timeout_ms=int(options["timeout_ms"] or settings.DMAAS_PREVIEW_TIMEOUT_MS),
        portal_database=portal_database,
        portal_role=portal_role,
        portal_schemas=schemas if portal_database == warehouse.database else [],
    )
    return plan, warehouse, preview


class Command(BaseCommand):
    help = "Print, or with --apply run, the SQL that makes the warehouse's production and preview roles."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--apply", action="store_true", help="run the SQL (default: print it)")
        parser.add_argument("--admin-url", help="a login that may create roles and grant on the warehouse "
                            "and portal databases (default: DMAAS_WAREHOUSE_ADMIN_URL)")
        parser.add_argument("--warehouse-url", help="the production login (default: DMAAS_WAREHOUSE)")
        parser.add_argument("--preview-url", help="the preview login (default: DMAAS_PREVIEW_WAREHOUSE_URL)")
        parser.add_argument("--production-schema", help="default: DMAAS_PRODUCTION_SCHEMA (with the copy's prefix)")
        parser.add_argument("--source-schema", action="append", metavar="SCHEMA",
                            help="a schema of raw data that models read through source(); repeat for more")
        parser.add_argument("--portal-database", help="the portal's database on this server "
                            "(default: from DATABASE_URL when it is on the warehouse's server)")
        parser.add_argument("--portal-role", help="the portal's login (default: the user of DATABASE_URL)")
        parser.add_argument("--portal-schema", action="append", metavar="SCHEMA",
                            help="when the portal's tables are in the warehouse database: their schema "
                            "(default public); repeat for more")
        parser.add_argument("--timeout-ms", type=int, help="the preview role's statement_timeout "
                            "(default: DMAAS_PREVIEW_TIMEOUT_MS)")

    def handle(self, *args, **options) -> None:
        plan, warehouse, preview = plan_from_settings(options)
        if not options["apply"]:
            self.stdout.write(self.render(plan))
            return
        admin_url = options["admin_url"] or os.environ.get("DMAAS_WAREHOUSE_ADMIN_URL", "")
        admin = parse_login(admin_url, "The admin URL (--admin-url or DMAAS_WAREHOUSE_ADMIN_URL)")
        self.apply(plan, admin_url, admin, {warehouse.user: warehouse.password, preview.user: preview.password})

    @staticmethod
    def render(plan: RolePlan) -> str:
        lines = ["-- dmaas warehouse roles (manage.py dmaas_warehouse_roles); run as a superuser in database "
                 f"{plan.database}.", "-- Passwords are not part of this script: set them with \\password ROLE.",
                 "BEGIN;"]
        for comment, statement in statements(plan):
            if comment:
                lines.append(f"-- {comment}")
            lines.append(statement.as_string(None) + ";")  # type: ignore[attr-defined]
        lines.append("COMMIT;")
        return "\n".join(lines) + "\n"

    def apply(self, plan: RolePlan, admin_url: str, admin: Login, passwords: dict[str, str | None]) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        if admin.database != plan.database:
            # The grants inside the warehouse database must run there.
            params = conninfo_to_dict(admin_url)
            params["dbname"] = plan.database
            admin_url = make_conninfo(**params)
        try:
            with psycopg.connect(admin_url, connect_timeout=10) as conn:
                hashed = {
                    role: conn.pgconn.encrypt_password(password.encode(), role.encode()).decode()
                    for role, password in passwords.items()
                    if password
                }
                with conn.transaction():
                    for comment, statement in statements(plan, hashed):
                        conn.execute(statement)  # type: ignore[arg-type]
                        if comment:
                            self.stdout.write(f"ok: {comment}")
        except psycopg.Error as err:
            raise CommandError(f"The roles were not changed: {err}") from None
        self.stdout.write(self.style.SUCCESS(
            f"Roles {plan.owner} (production) and {plan.preview} (previews) are set up in {plan.database}."))
