-- One row per landing row of consent records, parsed, with its status for ds and the reason.
-- The latest record per customer and channel as of ds is the consent in force.
with checked as (
    select *
    from {{ ref('stg_consents__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['customer_id', 'channel', 'recorded_at'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='recorded_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
