-- The CX trend lines of the KPI report: every customer, every touchpoint, rolling 30 days, with
-- the interval. The report draws the last days up to its ds (ml.reports.kpi).
select
    metric,
    period_end,
    value,
    ci_lower,
    ci_upper
from {{ ref('cx_metrics') }}
where
    segment_type = 'all'
    and touchpoint = 'all'
    and period_type = 'rolling_30d'
