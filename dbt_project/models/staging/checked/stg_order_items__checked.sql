-- Every landing row of order items, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_order_items__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('order_items', ['order_id', 'item_id', 'quantity', 'unit_price']) }}
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
)

select * from checked
