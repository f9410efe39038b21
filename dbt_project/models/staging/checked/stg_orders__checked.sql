-- Every landing row of orders, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_orders__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('orders', ['order_id', 'customer_id', 'ordered_at', 'total_amount', 'currency',
                        'status', 'channel']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_order_id') }} as order_id,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_ordered_at') }} as ordered_at,
        {{ parse_decimal('raw_total_amount') }} as total_amount,
        upper({{ clean_text('raw_currency') }}) as currency,
        coalesce(lower({{ clean_text('raw_status') }}), 'completed') as status,
        lower({{ clean_text('raw_channel') }}) as channel
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('order_id') }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('ordered_at') }}
            {{ reject_unparseable('ordered_at', 'timestamp') }}
            {{ reject_unparseable('total_amount', 'number') }}
            {{ reject_out_of_range('total_amount', 'total_amount >= 0', 'an order total cannot be negative') }}
            {{ reject_not_in('status', var('order_statuses')) }}
        end as reject_reason
    from parsed
)

select * from checked
