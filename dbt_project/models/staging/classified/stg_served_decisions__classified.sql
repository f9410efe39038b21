-- One row per landing row of served decisions, parsed, with its status for ds and the reason. A
-- decision served to an anonymous visitor keeps customer_id NULL here; int_identity_graph says whom
-- it belongs to once they log in.
with checked as (
    select *
    from {{ ref('stg_served_decisions__checked') }}
)

{{ classify_rows(
    'checked',
    key_columns=['decision_id', 'served_at'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='served_at >= ' ~ ds_end(),
) }}
