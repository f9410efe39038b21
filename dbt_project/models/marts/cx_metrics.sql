{#
  One row per period, metric, segment and touchpoint: CSAT, CES and NPS by day, ISO week and
  calendar month, and over the rolling 30 and 90 days ending on each day, for everyone
  (segment_type 'all') and per country, device, acquisition channel and lifecycle stage.
  A week or month that runs past the last day built is to date (is_complete_period false).
  A view over the additive daily counts: it holds every day built so far, whatever the order of
  the runs, and costs the number of days and segments, not of responses.
#}
{{ config(materialized='view') }}
{% set rolling_windows = [30, 90] %}

with daily as (
    select * from {{ ref('fct_cx_responses_daily') }}
),

last_day_built as (
    select max(response_date) as last_date from daily
),

calendar_periods as (
    {% for period_type, grain in [('day', 'day'), ('week', 'week'), ('month', 'month')] %}
        select
            '{{ period_type }}' as period_type,
            cast(date_trunc('{{ grain }}', response_date) as date) as period_start,
            survey_type,
            touchpoint,
            segment_type,
            segment_value,
            sum(responses) as responses,
            sum(score_sum) as score_sum,
            sum(score_sum_squares) as score_sum_squares,
            sum(favorable_responses) as favorable_responses,
            sum(detractor_responses) as detractor_responses
        from daily
        group by all
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

calendar_periods_dated as (
    select
        period_type,
        period_start,
        case period_type
            when 'day' then period_start
            when 'week' then cast(period_start + interval 6 day as date)
            else cast(period_start + interval 1 month - interval 1 day as date)
        end as period_end,
        {{ star_except(['period_type', 'period_start']) }}
    from calendar_periods
),

-- Rolling windows need every day, also days without responses: a dense spine per group.
groups as (
    select distinct
        survey_type,
        touchpoint,
        segment_type,
        segment_value
    from daily
),

days as (
    select
        {{ unnest_days('(select min(response_date) from daily)', '(select last_date from last_day_built)') }}
            as metric_date
),

dense_daily as (
    select
        days.metric_date,
        groups.survey_type,
        groups.touchpoint,
        groups.segment_type,
        groups.segment_value,
        coalesce(daily.responses, 0) as responses,
        coalesce(daily.score_sum, 0) as score_sum,
        coalesce(daily.score_sum_squares, 0) as score_sum_squares,
        coalesce(daily.favorable_responses, 0) as favorable_responses,
        coalesce(daily.detractor_responses, 0) as detractor_responses
    from days
    cross join groups
    left join daily
        on
            days.metric_date = daily.response_date
            and groups.survey_type = daily.survey_type
            and groups.touchpoint = daily.touchpoint
            and groups.segment_type = daily.segment_type
            and groups.segment_value = daily.segment_value
),

rolling_periods as (
    {% for window_days in rolling_windows %}
        select
            'rolling_{{ window_days }}d' as period_type,
            cast(metric_date - interval {{ window_days - 1 }} day as date) as period_start,
            metric_date as period_end,
            survey_type,
            touchpoint,
            segment_type,
            segment_value,
            sum(responses) over trailing_window as responses,
            sum(score_sum) over trailing_window as score_sum,
            sum(score_sum_squares) over trailing_window as score_sum_squares,
            sum(favorable_responses) over trailing_window as favorable_responses,
            sum(detractor_responses) over trailing_window as detractor_responses
        from dense_daily
        window
            trailing_window as (
                partition by survey_type, touchpoint, segment_type, segment_value
                order by metric_date rows between {{ window_days - 1 }} preceding and current row
            )
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

all_periods as (
    -- The same columns in the same order on both sides (Spark has no UNION BY NAME).
    select * from calendar_periods_dated
    union all
    select * from rolling_periods
    where responses > 0
),

final as (
    select
        period_type,
        period_start,
        period_end,
        period_end <= (select last_day_built.last_date from last_day_built) as is_complete_period,
        segment_type,
        segment_value,
        touchpoint,
        {{ cx_metric_columns() }}
    from all_periods
)

select * from final
