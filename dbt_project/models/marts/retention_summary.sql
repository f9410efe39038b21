{#
  One row per ds: the retention KPIs marketers read first. Repeat purchase rate among buyers;
  churn among customers who could have churned; 3-month retention averaged over the monthly
  cohorts whose third month is complete, weighted by cohort size.
#}
{# A snapshot per ds, kept across --full-refresh (past snapshots cannot be rebuilt). #}

with customers as (
    select * from {{ ref('customer_360') }}
    where ds = {{ ds() }}
),

cohorts as (
    select * from {{ ref('retention_cohorts') }}
    where ds = {{ ds() }}
),

buyers as (
    select
        count(*) filter (where frequency >= 1) as buyers,
        count(*) filter (where frequency >= 2) as repeat_buyers,
        count(*) filter (
            where {{ days_between('cast(first_order_at as date)', ds()) }} >= {{ var('churn_days') }}
        ) as churn_eligible_customers,
        count(*) filter (
            where {{ days_between('cast(first_order_at as date)', ds()) }} >= {{ var('churn_days') }}
            and lifecycle_stage = 'churned'
        ) as churned_customers
    from customers
),

three_month as (
    select
        sum(cohort_customers) as retention_3m_cohort_customers,
        sum(retained_customers) as retention_3m_retained_customers
    from cohorts
    where months_since_first_order = 3 and is_complete_period
),

final as (
    select
        {{ ds() }} as ds,
        buyers.buyers,
        buyers.repeat_buyers,
        case when buyers.buyers > 0 then cast(buyers.repeat_buyers as double) / buyers.buyers end as repeat_purchase_rate,
        buyers.churn_eligible_customers,
        buyers.churned_customers,
        case
            when buyers.churn_eligible_customers > 0
                then cast(buyers.churned_customers as double) / buyers.churn_eligible_customers
        end as churn_rate,
        three_month.retention_3m_cohort_customers,
        three_month.retention_3m_retained_customers,
        case
            when three_month.retention_3m_cohort_customers > 0
                then cast(three_month.retention_3m_retained_customers as double) / three_month.retention_3m_cohort_customers
        end as retention_3m
    from buyers
    cross join three_month
)

select * from final
