-- Every landing row of erasure requests, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_erasure_requests__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('erasure_requests', ['customer_id', 'requested_at']) }}
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
)

select * from checked
