-- Every landing row of events, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_events__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('events', ['event_id', 'customer_id', 'occurred_at', 'event_type', 'item_id',
                        'channel', 'device', 'anonymous_id']) }}
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
        lower({{ clean_text('raw_device') }}) as device,
        {{ clean_text('raw_anonymous_id') }} as anonymous_id
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('event_id') }}
            -- an anonymous visitor's event names the customer once a login links it (stg_events__classified)
            when customer_id is null and anonymous_id is null then 'missing_required: customer_id is empty'
            {{ reject_missing('occurred_at') }}
            {{ reject_missing('event_type') }}
            {{ reject_unparseable('occurred_at', 'timestamp') }}
            {{ reject_not_in('event_type', var('event_types')) }}
        end as reject_reason
    from parsed
)

select * from checked
