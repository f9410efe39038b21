-- One row per landing row of erasure requests, parsed, with its status and the reason.
-- Requests are never later-dated: erasure applies to every ds (see erased_customer_ids).
with source_rows as (
    select {{ raw_columns(['customer_id', 'requested_at']) }}
    from {{ source('landing', 'erasure_requests') }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_requested_at') }} as requested_at
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('requested_at') }}
            {{ reject_unparseable('requested_at', 'timestamp') }}
        end as reject_reason
    from parsed
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
