-- Every landing row of campaign sends (who a past or running campaign sent to, or kept as control:
-- an ESP's history, or another tool's randomized sends), parsed and checked once: in the night its
-- file arrived (or changed). stg_campaign_sends__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('campaign_sends', ['campaign_id', 'customer_id', 'channel', 'arm', 'is_control', 'sent_at',
                                       'assignment_probability']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_campaign_id') }} as campaign_id,
        {{ clean_text('raw_customer_id') }} as customer_id,
        lower({{ clean_text('raw_channel') }}) as channel,
        {{ clean_text('raw_arm') }} as arm,
        {{ parse_boolean('raw_is_control') }} as is_control,
        {{ parse_timestamp('raw_sent_at') }} as sent_at,
        try_cast({{ clean_text('raw_assignment_probability') }} as double) as assignment_probability
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('campaign_id') }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('channel') }}
            {{ reject_missing('arm') }}
            {{ reject_missing('is_control') }}
            {{ reject_missing('sent_at') }}
            {{ reject_unparseable('sent_at', 'timestamp') }}
            when is_control is null
                then 'invalid_value: is_control = ''' || raw_is_control || ''' is not true or false'
            {{ reject_unparseable('assignment_probability', 'number') }}
            {{ reject_out_of_range('assignment_probability',
                                   'assignment_probability > 0 and assignment_probability < 1',
                                   'a probability of being sent this arm lies strictly between 0 and 1') }}
        end as reject_reason
    from parsed
)

select * from checked
