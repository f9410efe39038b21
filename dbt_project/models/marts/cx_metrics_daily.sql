-- One row per day, metric (csat, ces, nps) and touchpoint ('all' for the total), for all
-- customers: the public daily CX table. Segments and longer periods: cx_metrics.
-- A view over the daily fact: it holds every day built so far, whatever the order of the runs.
{{ config(materialized='view') }}

with daily_totals as (
    select * from {{ ref('fct_cx_responses_daily') }}
    where segment_type = 'all'
),

final as (
    select
        response_date as metric_date,
        touchpoint,
        {{ cx_metric_columns() }}
    from daily_totals
)

select * from final
