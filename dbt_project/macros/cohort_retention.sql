{# Cohort retention by `grain` (month or week): cohorts by the period of the first completed
   order; retained = customers with a completed order in the k-th period after it. Every period
   from 0 to the one containing ds is present (with 0 retained where nobody came back). #}
{% macro cohort_retention(grain) %}
with completed_orders as (
    select
        customer_id,
        order_date
    from {{ ref('int_orders_sequenced') }}
    where is_completed and order_date <= {{ ds() }}
),

first_orders as (
    select
        customer_id,
        cast(date_trunc('{{ grain }}', min(order_date)) as date) as cohort_start
    from completed_orders
    group by customer_id
),

active_periods as (
    select distinct
        customer_id,
        cast(date_trunc('{{ grain }}', order_date) as date) as active_start
    from completed_orders
),

cohort_sizes as (
    select
        cohort_start,
        count(*) as cohort_customers
    from first_orders
    group by cohort_start
),

cohort_periods as (
    select
        cohort_start,
        cohort_customers,
        {{ unnest_zero_to(periods_between(grain, 'cohort_start', "cast(date_trunc('" ~ grain ~ "', " ~ ds() ~ ") as date)")) }}
            as periods_since_first_order
    from cohort_sizes
),

retained as (
    select
        first_orders.cohort_start,
        {{ periods_between(grain, 'first_orders.cohort_start', 'active_periods.active_start') }} as periods_since_first_order,
        count(*) as retained_customers
    from first_orders
    inner join active_periods on first_orders.customer_id = active_periods.customer_id
    group by all
),

final as (
    select
        {{ ds() }} as ds,
        cohort_periods.cohort_start as cohort_{{ grain }},
        cohort_periods.periods_since_first_order as {{ grain }}s_since_first_order,
        cohort_periods.cohort_customers,
        coalesce(retained.retained_customers, 0) as retained_customers,
        cast(coalesce(retained.retained_customers, 0) as double) / cohort_periods.cohort_customers as retention_rate,
        -- complete when the next period starts by the day after ds
        {{ add_periods(grain, 'cohort_periods.cohort_start', 'cohort_periods.periods_since_first_order + 1') }}
            <= {{ ds() }} + interval 1 day as is_complete_period
    from cohort_periods
    left join retained
        on
            cohort_periods.cohort_start = retained.cohort_start
            and cohort_periods.periods_since_first_order = retained.periods_since_first_order
)

select * from final
{% endmacro %}
