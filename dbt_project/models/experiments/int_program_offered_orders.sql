{#
  The orders an offer applied to, for the global holdout's readout (ml.activation.program): per
  treated customer and offer, the revenue and count of their completed orders within the audience's
  goal window of an assignment that carried the offer, in the readout window. An order in two such
  windows counts once, for the earliest assignment's offer.
#}
{{ config(materialized='table') }}

{%- set window_start -%}({{ ds() }} - {{ var('holdout_readout_days') - 1 }}){%- endset %}

with goal_windows as (
    {{ config_rows(var('experiment_goals', []), [['audience', 'string'], ['window_days', 'int']]) }}
),

assignments_so_far as (
    {{ assignments_so_far() }}
),

offer_windows as (
    select
        treated.customer_id,
        treated.offer_code,
        treated.ds as assigned_on,
        goal_windows.window_days
    from assignments_so_far as treated
    inner join goal_windows on treated.audience = goal_windows.audience
    where
        treated.ds >= {{ window_start }} - 1
        and treated.ds < {{ ds() }}
        and treated.experiment_group != 'control'
        and treated.offer_code is not null
),

offered_orders as (
    select
        orders.customer_id,
        orders.order_id,
        orders.total_amount,
        min_by(offer_windows.offer_code, offer_windows.assigned_on) as offer_code
    from {{ ref('int_completed_orders') }} as orders
    inner join offer_windows
        on
            orders.customer_id = offer_windows.customer_id
            and orders.ordered_at >= cast(offer_windows.assigned_on + 1 as timestamp)
            and orders.ordered_at < cast(offer_windows.assigned_on + 1 + offer_windows.window_days as timestamp)
    where
        orders.ordered_at >= cast({{ window_start }} as timestamp)
        and orders.ordered_at < cast({{ ds() }} + 1 as timestamp)
    group by all
)

select
    customer_id,
    offer_code,
    sum(total_amount) as revenue,
    count(*) as orders
from offered_orders
group by all
