-- One row per customer id ever named in an erasure request: the request as first seen (its first
-- file and row), and the earliest ds of any run that applied it. Never rebuilt (full_refresh false)
-- and a request is never removed: a night never depends on the erasure files still being in the
-- landing area, since erased_customer_ids() reads this table as well as the landing files.
-- first_applied_ds only moves earlier (the pre-hook drops the row that a run of an earlier ds
-- re-appends), so runs in any order (a reverse backfill, a rerun) leave the same ledger.
{{ config(pre_hook="{{ supersede_later_ledger_entries() }}") }}
with requests as (
    select
        customer_id,
        requested_at,
        raw_requested_at as requested_at_text,
        _source_file as source_file,
        _source_row as source_row
    from {{ ref('stg_erasure_requests__classified') }}
    where customer_id is not null and _load_error is null
),

known_customers as (
    select customer_id
    from {{ ref('stg_customers__classified') }}
    where row_status <> 'rejected'
),

requests_ranked as (
    select
        *,
        row_number() over (partition by customer_id order by source_file, source_row) as request_rank
    from requests
),

new_requests as (
    select *
    from requests_ranked
    where request_rank = 1
    {% if is_incremental() %}
        and customer_id not in (select ledger.customer_id from {{ this }} as ledger)
    {% endif %}
),

final as (
    select
        customer_id,
        requested_at,
        requested_at_text,
        requested_at is null as is_requested_at_unreadable,
        source_file,
        source_row,
        {{ ds() }} as first_applied_ds,
        customer_id in (select known_customers.customer_id from known_customers) as matched_customer_when_first_applied
    from new_requests
)

select * from final
