-- One row per landing row of behavioral events, parsed, with its status for ds and the reason.
with checked as (
    select *
    from {{ ref('stg_events__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['event_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='occurred_at >= ' ~ ds_end(),
    reference_checks=[
        reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer'),
        reject_unknown('item_id', ref('stg_items'), 'item_id', 'unknown_item'),
    ],
) }}
