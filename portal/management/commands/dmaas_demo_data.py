"""Demo data for a development install (`scripts/dev` runs this after `dmaas_demo`).

On a repository whose main has no model yet: the data team's starting project on main (two seeds
of raw shop data, staging models, `orders` with tests, `customer_revenue` reading it), built into
production, and one change of ana's submitted for review. That change drops a column that
`customer_revenue` reads, so its CI build (run by the worker once it starts) finds a breaking change
and the change waits in rita's review queue instead of being approved by the policy.
Idempotent: a repository that already has models is left alone. Refused outside DEBUG.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from models_service import changes, index
from models_service.git_store import MAIN_REF, Edit
from models_service.project_files import ColumnSpec, ModelSpec, TestSpec
from models_service.repo import PORTAL, get_store
from runner import preview
from runner import warehouse as wh
from runner.engine.compiler import Compiler, Target
from runner.engine.execution import Executor, RunOptions
from runner.engine.project import MappingSource, load_project

RAW_ORDERS = """order_id,customer_id,amount,status,ordered_on
1,10,12.50,shipped,2026-11-02
2,11,7.25,placed,2026-11-03
3,10,30.00,shipped,2026-11-05
4,12,5.10,returned,2026-11-08
5,11,19.99,shipped,2026-11-09
6,13,42.00,placed,2026-11-12
"""
RAW_CUSTOMERS = """customer_id,name,country,email,phone
10,Ada,DE,ada@example.com,+49 30 1234567
11,Bob,FR,bob@example.fr,+33 1 23 45 67 89
12,Cy,DE,cy@example.de,+49 89 7654321
13,Dee,NL,dee@example.nl,+31 20 123 4567
"""
MAIN = {
    "seeds/raw_orders.csv": RAW_ORDERS,
    "seeds/raw_customers.csv": RAW_CUSTOMERS,
    "models/staging/stg_orders.sql": "select order_id, customer_id, amount, status, ordered_on\n"
    "from {{ ref('raw_orders') }}\n",
    "models/staging/stg_customers.sql": "select customer_id, name, country, email, phone\n"
    "from {{ ref('raw_customers') }}\n",
    "models/orders.sql": "{{ config(materialized='table') }}\n\nselect o.order_id, o.customer_id, c.name as customer,\n"
    "       c.country, o.amount, o.status, o.ordered_on\nfrom {{ ref('stg_orders') }} o\n"
    "join {{ ref('stg_customers') }} c on c.customer_id = o.customer_id\n",
    "models/customer_revenue.sql": "{{ config(materialized='table') }}\n\nselect customer, country, "
    "sum(amount) as revenue, count(*) as orders\nfrom {{ ref('orders') }}\nwhere status <> 'returned'\n"
    "group by customer, country\n",
    "models/orders.yml": """version: 2
models:
  - name: orders
    description: One row per order, with the customer's name and country.
    meta: {owner: data team}
    columns:
      - name: order_id
        description: The order's number.
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - accepted_values:
              values: [placed, shipped, returned]
  - name: customer_revenue
    description: Revenue per customer, returns excluded.
    columns:
      - name: customer
        data_tests: [unique]
""",
}


class Command(BaseCommand):
    help = "Put demo models on main, build them, and submit one change for review (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args, force: bool = False, **options):
        if not (settings.DEBUG or force):
            raise CommandError("dmaas_demo_data writes demo models: run it only with DMAAS_DEBUG=1 (or --force).")
        store = get_store()
        main = store.tip(MAIN_REF)
        if any(path.endswith(".sql") and path.startswith("models/") for path, _ in store.snapshot(main).walk()):
            self.stderr.write("demo data: the repository has models already; left as it is")
            return
        sha = store.commit(MAIN_REF, lambda snap: Edit({p: t.encode() for p, t in MAIN.items()},
                                                       "The data team's shop models"), author=PORTAL).sha
        index.rebuild(store)
        files = preview.project_files(store, sha)
        warehouse = wh.get_warehouse()
        manifest = Compiler(load_project(MappingSource(files)),
                            Target(name="prod", schema=wh.production_schema(), type=warehouse.type)).compile()
        with warehouse.build() as adapter:
            summary = Executor(manifest, adapter, RunOptions(threads=2, gate=True)).run(set(manifest.nodes))
        self.stderr.write(f"demo data: main built into {wh.production_schema()}: "
                          f"{sum(1 for r in summary.results if r.status in ('success', 'pass'))} nodes passed")
        # the first production run, for the worker once it starts: it measures every model (row counts,
        # column statistics) and scans the new columns for personal data (the e-mail and phone here)
        from runner import runs

        run = runs.request_run(get_user_model().objects.get(username="adam"), source="cli")
        self.stderr.write(f"demo data: production run #{run.pk} queued (measurements and the PII scan follow)")
        ana = get_user_model().objects.get(username="ana")
        change = changes.open_change(ana, "Orders without the country",
                                     "The country now lives on the customers table only.")
        spec = ModelSpec("orders", description="One row per order, with the customer's name.", columns=[
            ColumnSpec("order_id", "The order's number.", tests=[TestSpec("unique"), TestSpec("not_null")]),
            ColumnSpec("status", tests=[TestSpec("accepted_values", {"values": ["placed", "shipped", "returned"]})]),
        ])
        changes.save_model(ana, change, "orders", "{{ config(materialized='table') }}\n\n"
                           "select o.order_id, o.customer_id, c.name as customer,\n       o.amount, o.status, "
                           "o.ordered_on\nfrom {{ ref('stg_orders') }} o\njoin {{ ref('stg_customers') }} c "
                           "on c.customer_id = o.customer_id\n", spec, message="Drop country from orders")
        changes.submit_change(ana, change)
        self.stderr.write(f"demo data: ana's change #{change.pk} is submitted; the worker builds it in ci_{change.pk}")
