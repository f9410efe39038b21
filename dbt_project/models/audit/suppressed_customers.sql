{{ config(materialized="view") }}

-- Customers no export may reach: the erased, and the near matches of an erasure request that
-- names no customer exactly, until a person confirms which customer asked. Decisions and the
-- publish checks read this list; data is purged only for erased_customers.
with erased as (
    select
        customer_id,
        'erased' as suppression_reason
    from {{ ref('erased_customers') }}
),

pending_confirmation as (
    select distinct
        near_match_customer_id as customer_id,
        'erasure_pending_confirmation' as suppression_reason
    from {{ ref('erasure_requests_unmatched') }}
    where near_match_customer_id is not null
),

final as (
    select * from erased
    union all
    select * from pending_confirmation
    where customer_id not in (select erased.customer_id from erased)
)

select * from final
