{{ config(materialized="view") }}

-- The customers erased: every id of the erasure ledger that is, or was when first applied, the id
-- of a customer. A request naming no customer is not listed here (see erasure_requests_unmatched).
-- Python stages that keep customer rows (marts.customer_recommendations, the channel tables and
-- files, the feature store) purge with this list, as the dbt marts do with erased_customer_ids().
with ledger as (
    select * from {{ ref('erasure_ledger') }}
),

known_customers as (
    select customer_id
    from {{ ref('stg_customers__classified') }}
    where row_status <> 'rejected'
),

final as (
    select ledger.customer_id
    from ledger
    where
        ledger.matched_customer_when_first_applied
        or ledger.customer_id in (select known_customers.customer_id from known_customers)
)

select * from final
