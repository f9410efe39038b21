-- One row per landing row of orders, parsed, with its status for ds and the reason.
with source_rows as (
    select
        {{ raw_columns(['order_id', 'customer_id', 'ordered_at', 'total_amount', 'currency',
                        'status', 'channel']) }}
    from {{ source('landing', 'orders') }}
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

{{ classify_rows(
    'checked',
    key_columns=['order_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='ordered_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
