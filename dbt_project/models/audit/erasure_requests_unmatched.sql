{{ config(materialized="view") }}

-- Erasure requests whose id matches no customer exactly, each with the customers it nearly matches
-- (the same id but for letter case or spaces; NULL when none): a person confirms the match and
-- re-lands the request with the exact id. Until then the near matches get no export
-- (audit.suppressed_customers): when in doubt, nobody who may have asked to be forgotten is contacted.
with ledger as (
    select * from {{ ref('erasure_ledger') }}
),

erased as (
    select customer_id from {{ ref('erased_customers') }}
),

customers as (
    select distinct customer_id
    from {{ ref('stg_customers__classified') }}
    where row_status not in ('rejected', 'erased')
),

unmatched as (
    select *
    from ledger
    where customer_id not in (select erased.customer_id from erased)
),

final as (
    select
        unmatched.customer_id as requested_customer_id,
        customers.customer_id as near_match_customer_id,
        unmatched.requested_at_text,
        unmatched.source_file,
        unmatched.source_row,
        unmatched.first_applied_ds
    from unmatched
    left join customers
        on
            upper(replace(unmatched.customer_id, ' ', '')) = upper(replace(customers.customer_id, ' ', ''))
            and unmatched.customer_id <> customers.customer_id
)

select * from final
