-- One row per landing row of erasure requests, parsed, with its status and the reason.
-- Requests are never later-dated: erasure applies to every ds (see erased_customer_ids).
with checked as (
    select *
    from {{ ref('stg_erasure_requests__checked') }}
),

known_customers as (
    select customer_id
    from {{ ref('stg_customers__classified') }}
    where row_status <> 'rejected'
)

{{ classify_rows(
    'checked',
    key_columns=['customer_id'],
    reference_checks=[reject_unknown('customer_id', 'known_customers', 'customer_id', 'unknown_customer')],
) }}
