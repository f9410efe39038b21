-- One row per landing row of identity links, parsed, with its status for ds and the reason.
with checked as (
    select *
    from {{ ref('stg_identity_links__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['anonymous_id', 'customer_id', 'linked_at'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='linked_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
