-- One row per order placed by the end of ds, with its place in the customer's history of
-- completed orders (cancelled and refunded orders do not count as purchases). Working state of the
-- current run; read by several marts, so stored as a table.
{{ config(materialized='table') }}
with orders as (
    select * from {{ ref('stg_orders') }}
),

order_lines as (
    select
        order_id,
        count(*) as count_lines,
        sum(quantity) as count_units
    from {{ ref('stg_order_items') }}
    group by order_id
),

completed_sequence as (
    select
        order_id,
        row_number() over customer_history as completed_order_number,
        lag(ordered_at) over customer_history as previous_completed_order_at
    from orders
    where status = 'completed'
    window customer_history as (partition by customer_id order by ordered_at, order_id)
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.status,
        orders.status = 'completed' as is_completed,
        orders.total_amount,
        orders.currency,
        orders.channel,
        coalesce(order_lines.count_lines, 0) as count_lines,
        coalesce(order_lines.count_units, 0) as count_units,
        completed_sequence.completed_order_number,
        completed_sequence.previous_completed_order_at,
        {{ days_between('completed_sequence.previous_completed_order_at', 'orders.ordered_at') }}
            as days_since_previous_completed_order
    from orders
    left join order_lines on orders.order_id = order_lines.order_id
    left join completed_sequence on orders.order_id = completed_sequence.order_id
)

select * from final
