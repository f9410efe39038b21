-- Every landing row of survey responses, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_survey_responses__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('survey_responses', ['response_id', 'customer_id', 'responded_at', 'survey_type', 'score',
                        'touchpoint', 'order_id', 'comment']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_response_id') }} as response_id,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_responded_at') }} as responded_at,
        lower({{ clean_text('raw_survey_type') }}) as survey_type,
        {{ parse_integer('raw_score') }} as score,
        lower({{ clean_text('raw_touchpoint') }}) as touchpoint,
        {{ clean_text('raw_order_id') }} as order_id,
        {{ clean_text('raw_comment') }} as comment
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('response_id') }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('responded_at') }}
            {{ reject_missing('survey_type') }}
            {{ reject_missing('score') }}
            {{ reject_unparseable('responded_at', 'timestamp') }}
            {{ reject_unparseable('score', 'number') }}
            {{ reject_not_in('survey_type', var('survey_types')) }}
            {{ reject_out_of_range('score',
                "case survey_type when 'csat' then score between 1 and 5"
                ~ " when 'ces' then score between 1 and 7 when 'nps' then score between 0 and 10 end",
                'csat 1-5, ces 1-7, nps 0-10') }}
        end as reject_reason
    from parsed
)

select * from checked
