-- One row per landing row of orders, parsed, with its status for ds and the reason.
with checked as (
    select *
    from {{ ref('stg_orders__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['order_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='ordered_at >= ' ~ ds_end(),
    reference_checks=[reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer')],
) }}
