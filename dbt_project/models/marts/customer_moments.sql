{#
  One row per ds and customer known as of that ds: the moments that make a customer qualify for an
  audience (ml/activation), as of the end of ds. Signup and last-order moments are read from
  customer_360 (tenure_days, recency_days); this model adds what customer_360 does not hold: the
  abandoned cart and the abandoned browse (product views with nothing after them).
#}
{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh like customer_360. #}
{{ config(
    pre_hook="{{ purge_erased_customers() }}",
) }}

with customers as (
    select customer_id from {{ ref('customer_360') }}
    where ds = {{ ds() }}
),

last_events as (
    select
        customer_id,
        max(occurred_at) filter (where event_type = 'add_to_cart') as last_add_to_cart_at,
        max(occurred_at) filter (where event_type = 'product_view') as last_product_view_at
    from {{ ref('stg_events') }}
    where event_type in ('add_to_cart', 'product_view') and occurred_at < {{ ds_end() }}
    group by customer_id
),

-- The item of each of those last events (the smallest id when several share the timestamp): what a
-- file's `reason` names ("added X to the cart").
last_items as (
    select
        last_events.customer_id,
        min(case when events.event_type = 'add_to_cart' then events.item_id end) as last_cart_item_id,
        min(case when events.event_type = 'product_view' then events.item_id end) as last_viewed_item_id
    from last_events
    inner join {{ ref('stg_events') }} as events
        on
            last_events.customer_id = events.customer_id
            and (
                (events.event_type = 'add_to_cart' and last_events.last_add_to_cart_at = events.occurred_at)
                or (events.event_type = 'product_view' and last_events.last_product_view_at = events.occurred_at)
            )
    group by last_events.customer_id
),

last_orders as (
    select
        customer_id,
        max(ordered_at) as last_order_at
    from {{ ref('int_orders_sequenced') }}
    where is_completed and ordered_at < {{ ds_end() }}
    group by customer_id
),

final as (
    select
        {{ ds() }} as ds,
        customers.customer_id,
        last_events.last_add_to_cart_at,
        last_items.last_cart_item_id,
        -- An abandoned cart: the last add-to-cart has no completed order at or after it.
        case
            when last_orders.last_order_at is null or last_orders.last_order_at < last_events.last_add_to_cart_at
                then {{ periods_between('second', 'last_events.last_add_to_cart_at', ds_end()) }} / 3600e0
        end as hours_since_cart_abandoned,
        last_events.last_product_view_at,
        last_items.last_viewed_item_id,
        -- Browse abandonment: the last product view has no add-to-cart and no completed order at or after it.
        case
            when
                (
                    last_events.last_add_to_cart_at is null
                    or last_events.last_add_to_cart_at < last_events.last_product_view_at
                )
                and (
                    last_orders.last_order_at is null
                    or last_orders.last_order_at < last_events.last_product_view_at
                )
                then {{ periods_between('second', 'last_events.last_product_view_at', ds_end()) }} / 3600e0
        end as hours_since_browse_abandoned
    from customers
    left join last_events on customers.customer_id = last_events.customer_id
    left join last_items on customers.customer_id = last_items.customer_id
    left join last_orders on customers.customer_id = last_orders.customer_id
)

select * from final
