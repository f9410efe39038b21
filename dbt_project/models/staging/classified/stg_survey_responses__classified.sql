-- One row per landing row of survey responses, parsed, with its status for ds and the reason.
-- Score ranges: csat 1-5, ces 1-7, nps 0-10.
with checked as (
    select *
    from {{ ref('stg_survey_responses__checked') }}
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
