-- One row per landing row of order items, parsed, with its status for ds and the reason.
-- An order line takes its date and its customer from its order.
with source_rows as (
    select {{ raw_columns(['order_id', 'item_id', 'quantity', 'unit_price']) }}
    from {{ source('landing', 'order_items') }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_order_id') }} as order_id,
        {{ clean_text('raw_item_id') }} as item_id,
        coalesce({{ parse_integer('raw_quantity') }}, case when {{ clean_text('raw_quantity') }} is null then 1 end)
            as quantity,
        {{ parse_decimal('raw_unit_price') }} as unit_price
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('order_id') }}
            {{ reject_missing('item_id') }}
            {{ reject_unparseable('quantity', 'number') }}
            {{ reject_unparseable('unit_price', 'number') }}
            {{ reject_out_of_range('quantity', 'quantity >= 1', 'at least 1') }}
            {{ reject_out_of_range('unit_price', 'unit_price >= 0', 'a price cannot be negative') }}
        end as reject_reason
    from parsed
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
        ~ " and order_id not in (select order_id from orders_by_status where row_status = 'accepted')",
    reference_checks=[
        reject_unknown('order_id', ref('stg_orders'), 'order_id', 'unknown_order'),
        reject_unknown('item_id', ref('stg_items'), 'item_id', 'unknown_item'),
    ],
) }}
