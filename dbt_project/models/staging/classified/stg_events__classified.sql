-- One row per landing row of behavioral events, parsed, with its status for ds and the reason.
with source_rows as (
    select
        {{ raw_columns(['event_id', 'customer_id', 'occurred_at', 'event_type', 'item_id',
                        'channel', 'device']) }}
    from {{ source('landing', 'events') }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_event_id') }} as event_id,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_occurred_at') }} as occurred_at,
        lower({{ clean_text('raw_event_type') }}) as event_type,
        {{ clean_text('raw_item_id') }} as item_id,
        lower({{ clean_text('raw_channel') }}) as channel,
        lower({{ clean_text('raw_device') }}) as device
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('event_id') }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('occurred_at') }}
            {{ reject_missing('event_type') }}
            {{ reject_unparseable('occurred_at', 'timestamp') }}
            {{ reject_not_in('event_type', var('event_types')) }}
        end as reject_reason
    from parsed
)

{{ classify_rows(
    'checked',
    key_columns=['event_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='occurred_at >= ' ~ ds_end(),
    reference_checks=[
        reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer'),
        reject_unknown('item_id', ref('stg_items'), 'item_id', 'unknown_item'),
    ],
) }}
