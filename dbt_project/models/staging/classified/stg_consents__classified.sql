-- One row per landing row of consent records, parsed, with its status for ds and the reason.
-- The latest record per customer and channel as of ds is the consent in force.
with source_rows as (
    select {{ raw_columns(['customer_id', 'channel', 'granted', 'recorded_at']) }}
    from {{ source('landing', 'consents') }}
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

{{ classify_rows(
    'checked',
    key_columns=['customer_id', 'channel', 'recorded_at'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='recorded_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
