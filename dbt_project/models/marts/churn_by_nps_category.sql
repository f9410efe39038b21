{#
  One row per ds and NPS category (latest NPS answer as of ds; 'no_response' without one):
  churn among customers who could have churned by ds (first completed order at least churn_days
  before ds). Ties relationship metrics to outcomes.
#}
{# A snapshot per ds, kept across --full-refresh (past snapshots cannot be rebuilt). #}

with customers as (
    select * from {{ ref('customer_360') }}
    where ds = {{ ds() }}
),

churn_eligible as (
    select
        coalesce(latest_nps_category, 'no_response') as nps_category,
        lifecycle_stage = 'churned' as is_churned
    from customers
    where {{ days_between('cast(first_order_at as date)', ds()) }} >= {{ var('churn_days') }}
),

final as (
    select
        {{ ds() }} as ds,
        nps_category,
        count(*) as eligible_customers,
        count(*) filter (where is_churned) as churned_customers,
        cast(count(*) filter (where is_churned) as double) / count(*) as churn_rate
    from churn_eligible
    group by nps_category
)

select * from final
