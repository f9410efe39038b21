-- Every landing row of consents, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_consents__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('consents', ['customer_id', 'channel', 'granted', 'recorded_at']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_customer_id') }} as customer_id,
        lower({{ clean_text('raw_channel') }}) as channel,
        {{ parse_boolean('raw_granted') }} as granted,
        {{ parse_timestamp('raw_recorded_at') }} as recorded_at
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('channel') }}
            {{ reject_missing('granted') }}
            {{ reject_missing('recorded_at') }}
            {{ reject_unparseable('recorded_at', 'timestamp') }}
            {{ reject_not_in('channel', var('consent_channels')) }}
            when granted is null
                then 'invalid_value: granted = ''' || raw_granted || ''' is not true or false'
        end as reject_reason
    from parsed
)

select * from checked
