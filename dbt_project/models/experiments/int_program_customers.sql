{#
  The global holdout's readout inputs (marts.fct_program_readout, ml.activation.program): per customer
  of customer_360 at ds, revenue and completed orders in the readout window (the
  holdout_readout_days up to ds), revenue in as many days before it (the CUPED covariate), and what
  contacting them cost in the window. Decisions of the day before the window to the day before ds act
  on the window's days (the decisions of ds itself are written after this readout).
#}
{{ config(materialized='table') }}

{%- set days = var('holdout_readout_days') -%}
{%- set window_start -%}({{ ds() }} - {{ days - 1 }}){%- endset %}

with orders as (
    select
        customer_id,
        ordered_at,
        total_amount,
        cast(ordered_at as date) as order_date
    from {{ ref('int_completed_orders') }}
    where
        ordered_at < cast({{ ds() }} + 1 as timestamp)
        and ordered_at >= cast({{ window_start }} - {{ days }} as timestamp)
),

revenue as (
    select
        customer_id,
        sum(total_amount) filter (where order_date >= {{ window_start }}) as revenue,
        count(*) filter (where order_date >= {{ window_start }}) as orders,
        sum(total_amount) filter (where order_date < {{ window_start }}) as pre_revenue
    from orders
    group by customer_id
),

assignments_so_far as (
    {{ assignments_so_far() }}
),

contact_costs as (
    {{ contact_costs() }}
),

contacts as (
    select
        treated.customer_id,
        sum(contact_costs.cost) as contact_cost
    from assignments_so_far as treated
    cross join lateral {{ elements_of('treated.channels', 'channel') }} as contacted -- noqa: ST05
    inner join contact_costs on contacted.channel = contact_costs.channel
    where
        treated.ds >= {{ window_start }} - 1
        and treated.ds < {{ ds() }}
        and treated.experiment_group != 'control'
    group by treated.customer_id
)

select
    customers.customer_id,
    coalesce(revenue.revenue, 0) as revenue,
    coalesce(revenue.orders, 0) as orders,
    coalesce(revenue.pre_revenue, 0) as pre_revenue,
    coalesce(contacts.contact_cost, 0) as contact_cost
from {{ ref('customer_360') }} as customers
left join revenue on customers.customer_id = revenue.customer_id
left join contacts on customers.customer_id = contacts.customer_id
where customers.ds = {{ ds() }}
