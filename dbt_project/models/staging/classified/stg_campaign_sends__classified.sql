-- One row per landing row of campaign sends, parsed, with its status for ds and the reason.
with checked as (
    select *
    from {{ ref('stg_campaign_sends__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['campaign_id', 'customer_id', 'sent_at'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='sent_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
