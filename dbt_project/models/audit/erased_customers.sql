{{ config(materialized="view") }}

-- Every customer with an erasure request on file, whatever its date: erasure reaches every ds.
-- Python stages that keep customer rows (marts.customer_recommendations) purge with this list too.
select customer_id from {{ erased_customer_ids() }} as erased
