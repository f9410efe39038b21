{#
  One row per response date, survey type, touchpoint ('all' for the total) and segment
  (segment_type 'all' with segment_value 'all' for everyone): additive counts from which every CX
  metric of any period is computed (cx_metric_columns).
  Incremental by date: a run replaces the days from ds minus the lookback to ds, so a night costs
  in proportion to those days, and late-arriving responses of the lookback days are picked up.
  The pre-hook empties the window first, so a day that lost all its rows is emptied too.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where response_date between "
        ~ "{{ incremental_window_start() }} and {{ ds() }}{% endif %}",
) }}

with responses as (
    select * from {{ ref('int_survey_responses_segmented') }}
    where
        response_date <= {{ ds() }}
        {% if is_incremental() %}
            and response_date >= {{ incremental_window_start() }}
        {% endif %}
),

responses_by_segment as (
    select
        response_date,
        survey_type,
        touchpoint,
        score,
        is_favorable,
        is_detractor,
        segment.segment_type,
        segment.segment_value
    from responses
    cross join unnest([
        {'segment_type': 'all', 'segment_value': 'all'},
        {'segment_type': 'country', 'segment_value': country},
        {'segment_type': 'device_type', 'segment_value': device_type},
        {'segment_type': 'acquisition_channel', 'segment_value': acquisition_channel},
        {'segment_type': 'lifecycle_stage', 'segment_value': lifecycle_stage}
    ]) as segments (segment)
),

final as (
    select
        response_date,
        survey_type,
        case when grouping(touchpoint) = 1 then 'all' else touchpoint end as touchpoint,
        segment_type,
        segment_value,
        count(*) as responses,
        sum(score) as score_sum,
        sum(score * score) as score_sum_squares,
        count(*) filter (where is_favorable) as favorable_responses,
        count(*) filter (where is_detractor) as detractor_responses
    from responses_by_segment
    group by grouping sets (
        (response_date, survey_type, segment_type, segment_value, touchpoint),
        (response_date, survey_type, segment_type, segment_value)
    )
)

select * from final
