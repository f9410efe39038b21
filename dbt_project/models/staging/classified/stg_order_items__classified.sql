-- One row per landing row of order items, parsed, with its status for ds and the reason.
-- An order line takes its date and its customer from its order.
with checked as (
    select *
    from {{ ref('stg_order_items__checked') }}
),

orders_by_status as (
    select
        order_id,
        row_status
    from {{ ref('stg_orders__classified') }}
)

{{ classify_rows(
    'checked',
    key_columns=['order_id', 'item_id'],
    erased_when="order_id in (select order_id from orders_by_status where row_status = 'erased')",
    later_dated_when="order_id in (select order_id from orders_by_status where row_status = 'later_dated')"
        ~ " and " ~ absent_from('order_id', 'orders_by_status', 'order_id', "parent_row.row_status = 'accepted'"),
    reference_checks=[
        reject_unknown('order_id', ref('stg_orders'), 'order_id', 'unknown_order'),
        reject_unknown('item_id', ref('stg_items'), 'item_id', 'unknown_item'),
    ],
) }}
