-- One row per landing row of survey responses, parsed, with its status for ds and the reason.
-- Score ranges: csat 1-5, ces 1-7, nps 0-10.
with source_rows as (
    select
        {{ raw_columns(['response_id', 'customer_id', 'responded_at', 'survey_type', 'score',
                        'touchpoint', 'order_id', 'comment']) }}
    from {{ source('landing', 'survey_responses') }}
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

{{ classify_rows(
    'checked',
    key_columns=['response_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='responded_at >= ' ~ ds_end(),
    reference_checks=[
        reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer'),
        reject_unknown('order_id', ref('stg_orders'), 'order_id', 'unknown_order'),
    ],
) }}
