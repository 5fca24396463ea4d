"""Synthetic, layered dbt projects and their source data for bench/engine.py.

A project has N models over four source tables (two dbt sources: ``shop`` with customers, orders and
products, and ``web`` with events), each ~``rows`` rows, created directly in a DuckDB file in schema
``raw``. Layers:

* ``models/staging``      views over one source table each (renames, casts, a filter, a Jinja loop);
* ``models/intermediate`` tables joining / aggregating 1-3 upstream models (CTEs, windows, CASE);
* ``models/marts``        tables at the end of the graph (reports, pivots, rankings).

Every model is 20-90 lines of SQL using ``ref``/``source``, some ``config()`` calls, ``{% for %}`` loops,
``var()`` and project macros. About a tenth of the models carry a ``unique``/``not_null`` test in the
layer's yml. The same seed always gives the same project and the same data (the data are drawn with
DuckDB's ``hash()`` of the row number and the seed, so they do not depend on thread scheduling).

Models are typed by the *shape* of their output (a fixed set of columns); every template states the
shapes it reads and the shape it writes, so any model may feed any later model that reads its shape.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

# --------------------------------------------------------------------------------------------------
# Source data
# --------------------------------------------------------------------------------------------------

SOURCE_TABLES = {"shop": ["customers", "orders", "products"], "web": ["events"]}

_SOURCE_SQL = Template(
    """
create schema if not exists raw;

create or replace table raw.customers as
select
    i::bigint as id,
    'first_' || (hash(i, $seed, 1) % 3000)::varchar as first_name,
    'last_' || (hash(i, $seed, 2) % 5000)::varchar as last_name,
    'user' || i::varchar || '@'
        || ['gmail.com', 'yahoo.com', 'outlook.com', 'example.org', 'corp.io'][1 + (hash(i, $seed, 3) % 5)::int]
        as email,
    ['us', 'de', 'fr', 'gb', 'nl', 'es', 'it', 'br', 'jp', 'in', 'ca', 'au'][1 + (hash(i, $seed, 4) % 12)::int]
        as country_code,
    ['consumer', 'consumer', 'smb', 'mid_market', 'enterprise'][1 + (hash(i, $seed, 5) % 5)::int] as segment,
    timestamp '2019-01-01' + to_seconds((hash(i, $seed, 6) % (4 * 365 * 86400))::bigint) as created_at,
    (hash(i, $seed, 7) % 10) < 8 as is_active
from range(1, $rows + 1) t(i);

create or replace table raw.products as
select
    i::bigint as id,
    ['apparel', 'electronics', 'home', 'garden', 'toys', 'sports', 'beauty', 'books'][1 + (hash(i, $seed, 11) % 8)::int]
        as category,
    'sub_' || (hash(i, $seed, 12) % 40)::varchar as subcategory,
    'brand_' || (hash(i, $seed, 13) % 300)::varchar as brand,
    (500 + hash(i, $seed, 14) % 50000)::bigint as list_price_cents,
    ((500 + hash(i, $seed, 14) % 50000) * (40 + hash(i, $seed, 15) % 40) / 100)::bigint as cost_cents,
    timestamp '2018-01-01' + to_seconds((hash(i, $seed, 16) % (5 * 365 * 86400))::bigint) as launched_at
from range(1, $rows + 1) t(i);

create or replace table raw.orders as
select
    i::bigint as id,
    (1 + hash(i, $seed, 21) % $buyers)::bigint as customer_id,
    (1 + hash(i, $seed, 22) % $sold)::bigint as product_id,
    timestamp '2020-01-01' + to_seconds((hash(i, $seed, 23) % (4 * 365 * 86400))::bigint) as ordered_at,
    ['placed', 'shipped', 'completed', 'completed', 'completed', 'completed', 'returned', 'cancelled']
        [1 + (hash(i, $seed, 24) % 8)::int] as status,
    ['web', 'web', 'app', 'store', 'partner'][1 + (hash(i, $seed, 25) % 5)::int] as channel,
    (1 + hash(i, $seed, 26) % 5)::integer as quantity,
    (100 + hash(i, $seed, 27) % 20000)::bigint as unit_price_cents,
    (5 * (hash(i, $seed, 28) % 5))::integer as discount_pct
from range(1, $rows + 1) t(i);

create or replace table raw.events as
select
    i::bigint as id,
    (1 + hash(i, $seed, 31) % $buyers)::bigint as customer_id,
    (1 + hash(i, $seed, 32) % ($rows // 3 + 1))::bigint as session_id,
    ['page_view', 'page_view', 'page_view', 'product_view', 'product_view', 'add_to_cart', 'checkout', 'purchase']
        [1 + (hash(i, $seed, 33) % 8)::int] as event_type,
    timestamp '2020-01-01' + to_seconds((hash(i, $seed, 34) % (4 * 365 * 86400))::bigint) as occurred_at,
    ['desktop', 'mobile', 'mobile', 'tablet'][1 + (hash(i, $seed, 35) % 4)::int] as device,
    case when hash(i, $seed, 33) % 8 = 7 then (100 + hash(i, $seed, 36) % 30000)::bigint else 0 end as revenue_cents
from range(1, $rows + 1) t(i);
"""
)


def create_sources(con, rows: int, seed: int) -> None:
    """Create the four source tables (schema ``raw``) on an open DuckDB connection."""
    # Orders and events come from a tenth of the customers and touch a twentieth of the products, so
    # per-customer and per-product models are smaller than the facts, as in a real warehouse.
    sql = _SOURCE_SQL.substitute(
        rows=int(rows), seed=int(seed), buyers=max(1, rows // 10), sold=max(1, rows // 20)
    )
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement)


# --------------------------------------------------------------------------------------------------
# Model shapes and templates
# --------------------------------------------------------------------------------------------------

ORD, CUS, PRD, EVT = "orders", "customers", "products", "events"
CDAY, CMET, PDAY, CACT = "customer_daily", "customer_metrics", "product_daily", "customer_activity"
MART = "mart"

# Key column of each shape, for the generated tests: (column, unique?)
SHAPE_KEYS = {
    ORD: ("order_id", True),
    CUS: ("customer_id", True),
    PRD: ("product_id", True),
    EVT: ("event_id", True),
    CDAY: ("customer_id", False),
    CMET: ("customer_id", True),
    PDAY: ("product_id", False),
    CACT: ("customer_id", False),
}

CHANNELS = ["web", "app", "store", "partner"]
EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]


def _sql(text: str, **values) -> str:
    return Template(textwrap.dedent(text).strip("\n")).substitute(**values) + "\n"


def _ref(name: str) -> str:
    return "{{ ref('" + name + "') }}"


# ---- staging (views over one source table) ------------------------------------------------------

_ORDER_FILTERS = [
    "ordered_at >= cast('{{ var(\"bench_start_date\") }}' as timestamp)",
    "quantity > 0",
    "channel in ('web', 'app', 'store', 'partner')",
    "unit_price_cents > 0",
    "status <> 'test'",
]


def stg_orders(rng, parents):
    return _sql(
        """
        $config
        with source as (

            select * from {{ source('shop', 'orders') }}

        ),

        renamed as (

            select
                id as order_id,
                customer_id,
                product_id,
                cast(ordered_at as date) as order_date,
                lower(status) as raw_status,
                channel,
                quantity,
                {{ cents_to_dollars('unit_price_cents') }} as unit_price,
                discount_pct / 100.0 as discount
            from source
            where $filter

        )

        select
            order_id,
            customer_id,
            product_id,
            order_date,
            case
            {%- for status, label in [('placed', 'open'), ('shipped', 'open'), ('completed', 'completed'),
                                      ('returned', 'returned'), ('cancelled', 'cancelled')] %}
                when raw_status = '{{ status }}' then '{{ label }}'
            {%- endfor %}
                else 'unknown'
            end as status,
            channel,
            quantity,
            unit_price,
            discount,
            round(quantity * unit_price * (1 - discount), 2) as amount
        from renamed
        """,
        config=rng.choice(["", "", "{{ config(materialized='view') }}"]),
        filter=rng.choice(_ORDER_FILTERS),
    )


def stg_customers(rng, parents):
    return _sql(
        """
        with source as (

            select * from {{ source('shop', 'customers') }}

        ),

        renamed as (

            select
                id as customer_id,
                trim(first_name) || ' ' || trim(last_name) as full_name,
                lower(split_part(email, '@', 2)) as email_domain,
                upper(country_code) as country,
                segment,
                cast(created_at as date) as signup_date,
                coalesce(is_active, false) as is_active
            from source
            where $filter

        )

        select
            customer_id,
            full_name,
            email_domain,
            country,
            case
                when country in ('US', 'CA') then 'north_america'
                when country in ('BR') then 'latin_america'
                when country in ('JP', 'IN', 'AU') then 'apac'
                else 'emea'
            end as region,
            segment,
            signup_date,
            is_active
        from renamed
        """,
        filter=rng.choice(["id is not null", "created_at is not null", "email like '%@%'"]),
    )


def stg_products(rng, parents):
    return _sql(
        """
        with source as (

            select * from {{ source('shop', 'products') }}

        ),

        renamed as (

            select
                id as product_id,
                lower(category) as category,
                subcategory,
                brand,
                {{ cents_to_dollars('list_price_cents') }} as list_price,
                {{ cents_to_dollars('cost_cents') }} as unit_cost,
                cast(launched_at as date) as launched_on
            from source
            where $filter

        )

        select
            product_id,
            category,
            subcategory,
            brand,
            list_price,
            unit_cost,
            round(list_price - unit_cost, 2) as unit_margin,
            launched_on
        from renamed
        """,
        filter=rng.choice(["id is not null", "list_price_cents >= 0", "launched_at is not null"]),
    )


def stg_events(rng, parents):
    return _sql(
        """
        with source as (

            select * from {{ source('web', 'events') }}

        ),

        renamed as (

            select
                id as event_id,
                customer_id,
                session_id,
                event_type,
                occurred_at as event_ts,
                cast(occurred_at as date) as event_date,
                device,
                {{ cents_to_dollars('revenue_cents') }} as revenue
            from source
            where $filter

        )

        select
            event_id,
            customer_id,
            session_id,
            event_type,
            event_ts,
            event_date,
            device,
            revenue,
            event_type in ({% for t in ['checkout', 'purchase'] %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
                as is_conversion_step
        from renamed
        """,
        filter=rng.choice(["id is not null", "occurred_at is not null", "device <> 'bot'"]),
    )


# ---- intermediate (tables) ----------------------------------------------------------------------

_ORD_KEEP = [
    "o.status <> 'cancelled'",
    "o.quantity > 0",
    "o.amount >= 0",
    "o.order_date >= date '2020-01-01'",
]


def int_orders_enriched(rng, parents):
    orders, customers, products = parents[ORD], parents.get(CUS), parents.get(PRD)
    ctes = [f"orders as (\n\n    select * from {_ref(orders)}\n\n)"]
    joins, cols = [], []
    if customers:
        ctes.append(
            "customers as (\n\n    select customer_id, country, segment, is_active\n"
            f"    from {_ref(customers)}\n\n)"
        )
        joins.append("left join customers c on o.customer_id = c.customer_id")
        cols.append("c.segment")
    else:
        cols.append("cast(null as varchar) as segment")
    if products:
        ctes.append(
            f"products as (\n\n    select product_id, category, list_price, unit_cost\n    from {_ref(products)}\n\n)"
        )
        joins.append("left join products p on o.product_id = p.product_id")
        cols.append("coalesce(p.list_price, o.unit_price) as list_price")
    else:
        cols.append("o.unit_price as list_price")
    return _sql(
        """
        with $ctes,

        joined as (

            select
                o.order_id,
                o.customer_id,
                o.product_id,
                o.order_date,
                o.status,
                o.channel,
                o.quantity,
                o.unit_price,
                o.discount,
                o.amount,
                $cols,
                row_number() over (
                    partition by o.customer_id order by o.order_date, o.order_id
                ) as customer_order_seq
            from orders o
            $joins
            where $keep

        )

        select
            order_id,
            customer_id,
            product_id,
            order_date,
            status,
            channel,
            quantity,
            unit_price,
            case
                when segment = 'enterprise' and customer_order_seq > 3 then least(discount + 0.05, 0.5)
                when unit_price > list_price * 1.5 then greatest(discount - 0.05, 0)
                else discount
            end as discount,
            round(quantity * unit_price * (1 - discount), 2) as amount,
            customer_order_seq
        from joined
        """,
        ctes=",\n\n".join(ctes),
        cols=",\n        ".join(cols),
        joins="\n    ".join(joins),
        keep=rng.choice(_ORD_KEEP),
    )


def int_orders_deduped(rng, parents):
    return _sql(
        """
        {{ config(materialized='table', tags=['orders']) }}

        with orders as (

            select * from $orders

        ),

        flagged as (

            select
                *,
                count(*) over (partition by order_id) as copies,
                lag(order_date) over (partition by customer_id order by order_date, order_id) as previous_order_date,
                sum(amount) over (
                    partition by customer_id
                    order by order_date, order_id
                    rows between unbounded preceding and current row
                ) as running_amount
            from orders

        )

        select
            order_id,
            customer_id,
            product_id,
            order_date,
            status,
            channel,
            quantity,
            unit_price,
            discount,
            amount,
            date_diff('day', previous_order_date, order_date) as days_since_previous_order,
            {{ amount_bucket('running_amount') }} as lifetime_bucket
        from flagged
        where copies = 1
        """,
        orders=_ref(parents[ORD]),
    )


def int_customer_daily(rng, parents):
    return _sql(
        """
        with orders as (

            select * from $orders
            where status in ('open', 'completed', 'returned')

        ),

        daily as (

            select
                customer_id,
                order_date,
                count(distinct order_id) as orders_count,
                sum(quantity) as items_count,
                sum(quantity * unit_price) as gross_amount,
                sum(amount) as net_amount,
                {%- for channel in $channels %}
                sum(case when channel = '{{ channel }}' then amount else 0 end) as {{ channel }}_amount
                {%- if not loop.last %},{% endif %}
                {%- endfor %}
            from orders
            group by customer_id, order_date

        )

        select
            customer_id,
            order_date,
            orders_count,
            items_count,
            round(gross_amount, 2) as gross_amount,
            round(net_amount, 2) as net_amount,
            {%- for channel in $channels %}
            round({{ channel }}_amount, 2) as {{ channel }}_amount,
            {%- endfor %}
            {{ safe_divide('net_amount', 'orders_count') }} as avg_order_amount
        from daily
        """,
        orders=_ref(parents[ORD]),
        channels=repr(CHANNELS),
    )


def int_customer_daily_union(rng, parents):
    a, b = parents[CDAY], parents["customer_daily_2"]
    return _sql(
        """
        with unioned as (

            select customer_id, order_date, orders_count, items_count, gross_amount, net_amount
            from $a

            union all

            select customer_id, order_date, orders_count, items_count, gross_amount, net_amount
            from $b

        ),

        combined as (

            select
                customer_id,
                order_date,
                sum(orders_count) as orders_count,
                sum(items_count) as items_count,
                sum(gross_amount) as gross_amount,
                sum(net_amount) as net_amount,
                count(*) as source_rows
            from unioned
            group by customer_id, order_date

        )

        select
            customer_id,
            order_date,
            orders_count,
            items_count,
            round(gross_amount, 2) as gross_amount,
            round(net_amount, 2) as net_amount,
            source_rows
        from combined
        where orders_count > 0
        """,
        a=_ref(a),
        b=_ref(b),
    )


def int_customer_metrics(rng, parents):
    return _sql(
        """
        with daily as (

            select * from $daily

        ),

        sequenced as (

            select
                customer_id,
                order_date,
                orders_count,
                net_amount,
                lag(order_date) over (partition by customer_id order by order_date) as previous_order_date
            from daily

        ),

        aggregated as (

            select
                customer_id,
                min(order_date) as first_order_date,
                max(order_date) as last_order_date,
                sum(orders_count) as orders_count,
                sum(net_amount) as net_amount,
                count(*) as active_days,
                avg(date_diff('day', previous_order_date, order_date)) as avg_days_between_orders
            from sequenced
            group by customer_id

        )

        select
            customer_id,
            first_order_date,
            last_order_date,
            orders_count,
            round(net_amount, 2) as net_amount,
            round({{ safe_divide('net_amount', 'orders_count') }}, 2) as avg_order_value,
            active_days,
            round(avg_days_between_orders, 1) as avg_days_between_orders
        from aggregated
        """,
        daily=_ref(parents[CDAY]),
    )


def int_customer_metrics_scored(rng, parents):
    return _sql(
        """
        with metrics as (

            select * from $metrics

        ),

        customers as (

            select customer_id, segment, is_active, signup_date
            from $customers

        ),

        scored as (

            select
                m.*,
                c.segment,
                coalesce(c.is_active, false) as is_active,
                ntile(10) over (order by m.net_amount) as value_decile,
                percent_rank() over (partition by c.segment order by m.orders_count) as frequency_rank
            from metrics m
            left join customers c on m.customer_id = c.customer_id

        )

        select
            customer_id,
            first_order_date,
            last_order_date,
            orders_count,
            net_amount,
            avg_order_value,
            active_days,
            value_decile,
            round(frequency_rank, 4) as frequency_rank,
            case
                when value_decile >= 9 and is_active then 'champion'
                when value_decile >= 6 then 'loyal'
                when date_diff('day', last_order_date, date '2024-01-01') > $lapse then 'lapsed'
                else 'casual'
            end as value_tier
        from scored
        """,
        metrics=_ref(parents[CMET]),
        customers=_ref(parents[CUS]),
        lapse=rng.choice([180, 270, 365]),
    )


def int_customer_metrics_blended(rng, parents):
    return _sql(
        """
        with orders_daily as (

            select * from $daily

        ),

        activity as (

            select * from $activity

        ),

        order_totals as (

            select
                customer_id,
                min(order_date) as first_order_date,
                max(order_date) as last_order_date,
                sum(orders_count) as orders_count,
                sum(net_amount) as net_amount,
                count(*) as active_days
            from orders_daily
            group by customer_id

        ),

        activity_totals as (

            select
                customer_id,
                sum(events_count) as events_count,
                sum(revenue) as web_revenue
            from activity
            group by customer_id

        )

        select
            coalesce(o.customer_id, a.customer_id) as customer_id,
            o.first_order_date,
            o.last_order_date,
            coalesce(o.orders_count, 0) as orders_count,
            round(coalesce(o.net_amount, 0) + coalesce(a.web_revenue, 0), 2) as net_amount,
            round({{ safe_divide('o.net_amount', 'o.orders_count') }}, 2) as avg_order_value,
            coalesce(o.active_days, 0) as active_days,
            coalesce(a.events_count, 0) as events_count
        from order_totals o
        full outer join activity_totals a on o.customer_id = a.customer_id
        """,
        daily=_ref(parents[CDAY]),
        activity=_ref(parents[CACT]),
    )


def int_customers_enriched(rng, parents):
    return _sql(
        """
        with customers as (

            select * from $customers

        ),

        metrics as (

            select customer_id, orders_count, net_amount, last_order_date
            from $metrics

        ),

        joined as (

            select
                c.customer_id,
                c.full_name,
                c.email_domain,
                c.country,
                c.segment,
                c.signup_date,
                c.is_active,
                coalesce(m.orders_count, 0) as orders_count,
                coalesce(m.net_amount, 0) as net_amount,
                m.last_order_date
            from customers c
            left join metrics m on c.customer_id = m.customer_id

        )

        select
            customer_id,
            full_name,
            email_domain,
            country,
            case
                when net_amount > $big then 'enterprise'
                when net_amount > $mid and segment = 'consumer' then 'smb'
                else segment
            end as segment,
            signup_date,
            is_active and (last_order_date is not null or orders_count = 0) as is_active,
            orders_count,
            net_amount
        from joined
        """,
        customers=_ref(parents[CUS]),
        metrics=_ref(parents[CMET]),
        big=rng.choice([20000, 40000, 80000]),
        mid=rng.choice([2000, 5000, 10000]),
    )


def int_product_daily(rng, parents):
    products = parents.get(PRD)
    join = (
        f"inner join (select product_id, category from {_ref(products)}) p on o.product_id = p.product_id"
        if products
        else ""
    )
    return _sql(
        """
        with orders as (

            select o.*
            from $orders o
            $join
            where o.status <> 'cancelled'

        ),

        daily as (

            select
                product_id,
                order_date,
                count(*) as orders_count,
                sum(quantity) as units,
                sum(amount) as revenue,
                sum(case when status = 'returned' then quantity else 0 end) as returned_units
            from orders
            group by product_id, order_date

        )

        select
            product_id,
            order_date,
            orders_count,
            units,
            round(revenue, 2) as revenue,
            returned_units,
            round({{ safe_divide('returned_units', 'units') }}, 4) as return_rate
        from daily
        where units > 0
        """,
        orders=_ref(parents[ORD]),
        join=join,
    )


def int_product_daily_rolling(rng, parents):
    return _sql(
        """
        with daily as (

            select * from $daily

        ),

        rolling as (

            select
                product_id,
                order_date,
                orders_count,
                units,
                revenue,
                sum(units) over (
                    partition by product_id order by order_date
                    rows between $window preceding and current row
                ) as units_rolling,
                avg(revenue) over (
                    partition by product_id order by order_date
                    rows between $window preceding and current row
                ) as revenue_rolling_avg,
                dense_rank() over (partition by order_date order by revenue desc) as daily_revenue_rank
            from daily

        )

        select
            product_id,
            order_date,
            orders_count,
            units,
            revenue,
            units_rolling,
            round(revenue_rolling_avg, 2) as revenue_rolling_avg,
            daily_revenue_rank
        from rolling
        """,
        daily=_ref(parents[PDAY]),
        window=rng.choice([6, 13, 27]),
    )


def int_customer_activity(rng, parents):
    return _sql(
        """
        with events as (

            select * from $events

        ),

        daily as (

            select
                customer_id,
                event_date,
                count(*) as events_count,
                count(distinct session_id) as sessions_count,
                sum(revenue) as revenue,
                {%- for event_type in $types %}
                count(*) filter (where event_type = '{{ event_type }}') as {{ event_type }}_events
                {%- if not loop.last %},{% endif %}
                {%- endfor %}
            from events
            group by customer_id, event_date

        )

        select
            customer_id,
            event_date,
            events_count,
            sessions_count,
            round(revenue, 2) as revenue,
            {%- for event_type in $types %}
            {{ event_type }}_events,
            {%- endfor %}
            purchase_events > 0 as converted
        from daily
        """,
        events=_ref(parents[EVT]),
        types=repr(EVENT_TYPES),
    )


def int_customer_activity_active(rng, parents):
    return _sql(
        """
        with activity as (

            select * from $activity

        ),

        customers as (

            select customer_id, is_active, signup_date
            from $customers

        ),

        filtered as (

            select a.*
            from activity a
            inner join customers c on a.customer_id = c.customer_id
            where c.is_active or a.event_date >= c.signup_date

        )

        select
            customer_id,
            event_date,
            events_count,
            sessions_count,
            revenue,
            sum(events_count) over (
                partition by customer_id order by event_date
                rows between unbounded preceding and current row
            ) as cumulative_events
        from filtered
        """,
        activity=_ref(parents[CACT]),
        customers=_ref(parents[CUS]),
    )


def int_events_sessionized(rng, parents):
    return _sql(
        """
        with events as (

            select * from $events

        ),

        ordered as (

            select
                *,
                lag(event_ts) over (partition by customer_id order by event_ts, event_id) as previous_event_ts
            from events

        ),

        marked as (

            select
                *,
                case
                    when previous_event_ts is null then 1
                    when date_diff('minute', previous_event_ts, event_ts) > $gap then 1
                    else 0
                end as is_new_session
            from ordered

        )

        select
            event_id,
            customer_id,
            customer_id * 100000 + sum(is_new_session) over (
                partition by customer_id order by event_ts, event_id
                rows between unbounded preceding and current row
            ) as session_id,
            event_type,
            event_ts,
            event_date,
            device,
            revenue
        from marked
        """,
        events=_ref(parents[EVT]),
        gap=rng.choice([30, 60, 120]),
    )


# ---- marts (tables at the end of the graph) -----------------------------------------------------


def mart_customer_360(rng, parents):
    activity = parents.get(CACT)
    activity_cte = (
        f"activity as (\n\n    select customer_id, sum(events_count) as events_count, max(event_date) as last_seen\n"
        f"    from {_ref(activity)}\n    group by customer_id\n\n)"
        if activity
        else "activity as (\n\n    select null::bigint as customer_id, 0 as events_count, null::date as last_seen\n\n)"
    )
    return _sql(
        """
        {{ config(materialized='table', tags=['customer', 'kpi']) }}

        with customers as (

            select * from $customers

        ),

        metrics as (

            select * from $metrics

        ),

        $activity_cte

        select
            c.customer_id,
            c.full_name,
            c.country,
            c.segment,
            c.signup_date,
            m.first_order_date,
            m.last_order_date,
            coalesce(m.orders_count, 0) as lifetime_orders,
            coalesce(m.net_amount, 0) as lifetime_value,
            m.avg_order_value,
            coalesce(a.events_count, 0) as lifetime_events,
            a.last_seen,
            {{ amount_bucket('coalesce(m.net_amount, 0)') }} as value_bucket,
            case
                when m.last_order_date >= date '2023-07-01' then 'active'
                when m.last_order_date >= date '2023-01-01' then 'cooling'
                when m.last_order_date is not null then 'churned'
                else 'prospect'
            end as lifecycle_stage
        from customers c
        left join metrics m on c.customer_id = m.customer_id
        left join activity a on c.customer_id = a.customer_id
        """,
        customers=_ref(parents[CUS]),
        metrics=_ref(parents[CMET]),
        activity_cte=activity_cte,
    )


def mart_revenue_by_country_month(rng, parents):
    return _sql(
        """
        with daily as (

            select * from $daily

        ),

        customers as (

            select customer_id, country, segment from $customers

        ),

        monthly as (

            select
                c.country,
                c.segment,
                date_trunc('month', d.order_date) as order_month,
                sum(d.orders_count) as orders_count,
                sum(d.net_amount) as revenue,
                count(distinct d.customer_id) as buyers
            from daily d
            inner join customers c on d.customer_id = c.customer_id
            group by 1, 2, 3

        )

        select
            country,
            segment,
            order_month,
            orders_count,
            round(revenue, 2) as revenue,
            buyers,
            round({{ safe_divide('revenue', 'buyers') }}, 2) as revenue_per_buyer,
            round(revenue - lag(revenue) over (partition by country, segment order by order_month), 2)
                as revenue_change,
            sum(revenue) over (partition by country, segment, year(order_month) order by order_month)
                as revenue_ytd
        from monthly
        """,
        daily=_ref(parents[CDAY]),
        customers=_ref(parents[CUS]),
    )


def mart_product_performance(rng, parents):
    return _sql(
        """
        with daily as (

            select * from $daily
            where order_date >= cast('{{ var("bench_start_date") }}' as date)

        ),

        products as (

            select * from $products

        ),

        totals as (

            select
                product_id,
                sum(units) as units,
                sum(revenue) as revenue,
                count(*) as selling_days,
                max(order_date) as last_sold_on
            from daily
            group by product_id

        )

        select
            p.product_id,
            p.category,
            p.subcategory,
            p.brand,
            t.units,
            round(t.revenue, 2) as revenue,
            round(t.revenue - t.units * p.unit_cost, 2) as gross_margin,
            t.selling_days,
            t.last_sold_on,
            rank() over (partition by p.category order by t.revenue desc) as category_rank,
            round(100.0 * t.revenue / sum(t.revenue) over (partition by p.category), 3) as category_share_pct
        from totals t
        inner join products p on t.product_id = p.product_id
        """,
        daily=_ref(parents[PDAY]),
        products=_ref(parents[PRD]),
    )


def mart_channel_mix(rng, parents):
    return _sql(
        """
        {%- set channels = $channels %}

        with orders as (

            select * from $orders
            where status <> 'cancelled'

        ),

        monthly as (

            select
                date_trunc('month', order_date) as order_month,
                {%- for channel in channels %}
                sum(case when channel = '{{ channel }}' then amount else 0 end) as {{ channel }}_revenue,
                count(case when channel = '{{ channel }}' then 1 end) as {{ channel }}_orders,
                {%- endfor %}
                sum(amount) as total_revenue,
                count(*) as total_orders
            from orders
            group by 1

        )

        select
            order_month,
            {%- for channel in channels %}
            round({{ channel }}_revenue, 2) as {{ channel }}_revenue,
            {{ channel }}_orders,
            round({{ safe_divide(channel ~ '_revenue', 'total_revenue') }}, 4) as {{ channel }}_share,
            {%- endfor %}
            round(total_revenue, 2) as total_revenue,
            total_orders
        from monthly
        """,
        orders=_ref(parents[ORD]),
        channels=repr(CHANNELS),
    )


def mart_cohort_retention(rng, parents):
    return _sql(
        """
        with metrics as (

            select * from $metrics

        ),

        customers as (

            select customer_id, segment from $customers

        ),

        cohorts as (

            select
                m.customer_id,
                c.segment,
                date_trunc('month', m.first_order_date) as cohort_month,
                date_diff('month', m.first_order_date, m.last_order_date) as months_retained,
                m.net_amount
            from metrics m
            left join customers c on m.customer_id = c.customer_id
            where m.first_order_date is not null

        )

        select
            cohort_month,
            coalesce(segment, 'unknown') as segment,
            count(*) as cohort_size,
            {%- for months in [1, 3, 6, 12] %}
            round(avg(case when months_retained >= {{ months }} then 1.0 else 0.0 end), 4)
                as retained_{{ months }}m,
            {%- endfor %}
            round(sum(net_amount), 2) as cohort_revenue
        from cohorts
        group by 1, 2
        """,
        metrics=_ref(parents[CMET]),
        customers=_ref(parents[CUS]),
    )


def mart_event_funnel(rng, parents):
    return _sql(
        """
        {{ config(materialized='table', tags=['web']) }}

        with events as (

            select * from $events

        ),

        by_session as (

            select
                session_id,
                device,
                min(event_date) as session_date,
                {%- for step in $steps %}
                max(case when event_type = '{{ step }}' then 1 else 0 end) as reached_{{ step }}
                {%- if not loop.last %},{% endif %}
                {%- endfor %}
            from events
            group by session_id, device

        )

        select
            date_trunc('week', session_date) as session_week,
            device,
            count(*) as sessions,
            {%- for step in $steps %}
            sum(reached_{{ step }}) as {{ step }}_sessions,
            {%- endfor %}
            round({{ safe_divide('sum(reached_purchase)', 'count(*)') }}, 4) as conversion_rate
        from by_session
        group by 1, 2
        """,
        events=_ref(parents[EVT]),
        steps=repr(EVENT_TYPES),
    )


def mart_daily_kpis(rng, parents):
    return _sql(
        """
        with orders as (

            select
                order_date as kpi_date,
                sum(orders_count) as orders_count,
                sum(net_amount) as order_revenue,
                count(distinct customer_id) as buyers
            from $daily
            group by 1

        ),

        activity as (

            select
                event_date as kpi_date,
                sum(events_count) as events_count,
                sum(sessions_count) as sessions_count,
                count(distinct customer_id) as visitors
            from $activity
            group by 1

        )

        select
            coalesce(o.kpi_date, a.kpi_date) as kpi_date,
            coalesce(o.orders_count, 0) as orders_count,
            round(coalesce(o.order_revenue, 0), 2) as order_revenue,
            coalesce(o.buyers, 0) as buyers,
            coalesce(a.events_count, 0) as events_count,
            coalesce(a.sessions_count, 0) as sessions_count,
            coalesce(a.visitors, 0) as visitors,
            round({{ safe_divide('o.buyers', 'a.visitors') }}, 4) as buyer_rate,
            avg(coalesce(o.order_revenue, 0)) over (
                order by coalesce(o.kpi_date, a.kpi_date) rows between 6 preceding and current row
            ) as order_revenue_7d_avg
        from orders o
        full outer join activity a on o.kpi_date = a.kpi_date
        """,
        daily=_ref(parents[CDAY]),
        activity=_ref(parents[CACT]),
    )


@dataclass(frozen=True)
class Kind:
    prefix: str
    render: object
    reads: tuple  # required shapes (a shape may appear twice: "<shape>_2" is a second parent)
    optional: tuple = ()  # shapes joined when available, with probability 1/2
    writes: str = MART
    weight: int = 1


STAGING = {
    ORD: Kind("stg_shop__orders", stg_orders, (), writes=ORD),
    CUS: Kind("stg_shop__customers", stg_customers, (), writes=CUS),
    PRD: Kind("stg_shop__products", stg_products, (), writes=PRD),
    EVT: Kind("stg_web__events", stg_events, (), writes=EVT),
}

INTERMEDIATE = [
    Kind("int_orders_enriched", int_orders_enriched, (ORD,), (CUS, PRD), ORD, 3),
    Kind("int_orders_deduped", int_orders_deduped, (ORD,), (), ORD, 2),
    Kind("int_customer_daily", int_customer_daily, (ORD,), (), CDAY, 3),
    Kind("int_customer_daily_union", int_customer_daily_union, (CDAY, "customer_daily_2"), (), CDAY, 1),
    Kind("int_customer_metrics", int_customer_metrics, (CDAY,), (), CMET, 3),
    Kind("int_customer_metrics_scored", int_customer_metrics_scored, (CMET, CUS), (), CMET, 2),
    Kind("int_customer_metrics_blended", int_customer_metrics_blended, (CDAY, CACT), (), CMET, 1),
    Kind("int_customers_enriched", int_customers_enriched, (CUS, CMET), (), CUS, 2),
    Kind("int_product_daily", int_product_daily, (ORD,), (PRD,), PDAY, 2),
    Kind("int_product_daily_rolling", int_product_daily_rolling, (PDAY,), (), PDAY, 1),
    Kind("int_customer_activity", int_customer_activity, (EVT,), (), CACT, 2),
    Kind("int_customer_activity_active", int_customer_activity_active, (CACT, CUS), (), CACT, 1),
    Kind("int_events_sessionized", int_events_sessionized, (EVT,), (), EVT, 1),
]

MARTS = [
    Kind("fct_customer_360", mart_customer_360, (CUS, CMET), (CACT,), MART, 2),
    Kind("rpt_revenue_by_country_month", mart_revenue_by_country_month, (CDAY, CUS), (), MART, 2),
    Kind("rpt_product_performance", mart_product_performance, (PDAY, PRD), (), MART, 2),
    Kind("rpt_channel_mix", mart_channel_mix, (ORD,), (), MART, 1),
    Kind("rpt_cohort_retention", mart_cohort_retention, (CMET, CUS), (), MART, 1),
    Kind("rpt_event_funnel", mart_event_funnel, (EVT,), (), MART, 1),
    Kind("rpt_daily_kpis", mart_daily_kpis, (CDAY, CACT), (), MART, 1),
]


# --------------------------------------------------------------------------------------------------
# Project
# --------------------------------------------------------------------------------------------------


@dataclass
class Model:
    name: str
    layer: str
    shape: str
    parents: list
    sql: str
    key: tuple | None = None  # (column, unique?) when the model carries a test


@dataclass
class Project:
    n_models: int
    models: list = field(default_factory=list)

    @property
    def n_tests(self) -> int:
        return sum((2 if m.key[1] else 1) for m in self.models if m.key)


_MACROS = """\
{% macro cents_to_dollars(column_name, scale=2) -%}
    round(cast({{ column_name }} as double) / 100, {{ scale }})
{%- endmacro %}


{% macro safe_divide(numerator, denominator) -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 then null
        else cast({{ numerator }} as double) / ({{ denominator }})
    end
{%- endmacro %}


{% macro amount_bucket(column_name) -%}
    case
    {%- for upper, label in [(50, 'small'), (250, 'medium'), (1000, 'large')] %}
        when {{ column_name }} < {{ upper }} then '{{ label }}'
    {%- endfor %}
        else 'huge'
    end
{%- endmacro %}
"""

_DBT_PROJECT = """\
name: bench
version: '1.0.0'
config-version: 2
profile: bench

model-paths: ["models"]
macro-paths: ["macros"]
test-paths: ["tests"]

vars:
  bench_start_date: '2020-01-01'

models:
  bench:
    staging:
      +materialized: view
    intermediate:
      +materialized: table
    marts:
      +materialized: table
      +tags: ["marts"]
"""

# The warehouse path comes from the environment so that every tool can point at its own copy.
_PROFILES = """\
bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('BENCH_WAREHOUSE') }}"
      schema: analytics
      threads: 2
"""


def plan(n_models: int, seed: int) -> Project:
    """Choose the models, their layers, parents and SQL (deterministic for a seed)."""
    rng = random.Random(f"dmaas-bench-{seed}-{n_models}")
    n_staging = max(4, round(n_models * 0.12))
    n_marts = max(3, round(n_models * 0.28))
    n_inter = n_models - n_staging - n_marts
    if n_inter < 8:
        raise ValueError("use at least 20 models")
    project = Project(n_models)
    by_shape: dict[str, list[str]] = {}
    counters: dict[str, int] = {}

    def name_for(prefix):
        counters[prefix] = counters.get(prefix, 0) + 1
        return f"{prefix}_{counters[prefix]:03d}"

    def pick(shape, exclude=()):
        pool = [m for m in by_shape.get(shape, []) if m not in exclude]
        if not pool:
            return None
        # Half the time one of the most recent models (deep chains), otherwise any (wide fan-in).
        return rng.choice(pool[-8:]) if rng.random() < 0.5 else rng.choice(pool)

    def add(kind, layer, parents):
        model = Model(name_for(kind.prefix), layer, kind.writes, list(parents.values()), "")
        model.sql = kind.render(rng, parents)
        project.models.append(model)
        by_shape.setdefault(kind.writes, []).append(model.name)

    staging_shapes = [ORD, CUS, PRD, EVT]
    for i in range(n_staging):
        shape = staging_shapes[i] if i < 4 else rng.choice([ORD, ORD, CUS, PRD, EVT])
        add(STAGING[shape], "staging", {})

    def build(kinds, layer, count):
        for _ in range(count):
            usable = [k for k in kinds if all(by_shape.get(s.replace("_2", "")) for s in k.reads)]
            kind = rng.choices(usable, weights=[k.weight for k in usable])[0]
            parents = {}
            for shape in kind.reads:
                base = shape.replace("_2", "")
                parents[shape] = pick(base, exclude=parents.values()) or pick(base)
            for shape in kind.optional:
                if by_shape.get(shape) and rng.random() < 0.5:
                    parents[shape] = pick(shape)
            add(kind, layer, parents)

    # Intermediate kinds first produce each derived shape once, so every later kind is usable.
    build(INTERMEDIATE, "intermediate", n_inter)
    build(MARTS, "marts", n_marts)

    # Tests on ~10% of the models: a unique+not_null or a not_null on the shape's key column.
    testable = [m for m in project.models if m.shape in SHAPE_KEYS or m.name.startswith("fct_customer_360")]
    for model in rng.sample(testable, max(2, round(n_models * 0.1))):
        model.key = ("customer_id", True) if model.shape == MART else SHAPE_KEYS[model.shape]
    return project


def write_project(project: Project, directory: Path) -> None:
    """Write dbt_project.yml, profiles.yml, macros, models and the layer yml files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dbt_project.yml").write_text(_DBT_PROJECT)
    (directory / "profiles.yml").write_text(_PROFILES)
    (directory / "macros").mkdir(exist_ok=True)
    (directory / "macros" / "bench_helpers.sql").write_text(_MACROS)
    (directory / "tests").mkdir(exist_ok=True)
    for layer in ("staging", "intermediate", "marts"):
        folder = directory / "models" / layer
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for model in project.models:
            if model.layer != layer:
                continue
            (folder / f"{model.name}.sql").write_text(model.sql)
            if model.key:
                column, unique = model.key
                tests = ["unique", "not_null"] if unique else ["not_null"]
                entries.append(
                    f"  - name: {model.name}\n"
                    f'    description: "Synthetic {model.shape.replace("_", " ")} model ({layer})."\n'
                    f"    columns:\n"
                    f"      - name: {column}\n"
                    f"        data_tests:\n" + "".join(f"          - {t}\n" for t in tests)
                )
        yml = "version: 2\n\n"
        if layer == "staging":
            yml += "sources:\n"
            for source, tables in SOURCE_TABLES.items():
                yml += f"  - name: {source}\n    schema: raw\n    tables:\n"
                yml += "".join(f"      - name: {t}\n" for t in tables)
            yml += "\n"
        if entries:
            yml += "models:\n" + "".join(entries)
        (folder / f"_{layer}.yml").write_text(yml)
