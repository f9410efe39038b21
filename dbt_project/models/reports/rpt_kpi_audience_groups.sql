-- The audience sizes of the KPI report: per ds and audience, the decided customers by group, the
-- audience's control labelled as its holdout.
select
    ds,
    audience,
    customers,
    case
        when step = 'group_control' then 'control (holdout)'
        else substr(step, 7)
    end as experiment_group
from {{ source('activation', 'audience_funnel') }}
where step like 'group_%'
