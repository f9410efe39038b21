{#
  One row per response date, survey type, touchpoint ('all' for the total) and segment
  (segment_type 'all' with segment_value 'all' for everyone): additive counts from which every CX
  metric of any period is computed (cx_metric_columns).
  Incremental by date: a run replaces the days from ds minus the lookback to ds, so a night costs
  in proportion to those days, and late-arriving responses of the lookback days are picked up.
  The pre-hook empties the window first, so a day that lost all its rows is emptied too.
#}
{# On Spark the table is rebuilt each run: its parquet tables cannot delete the window (see
   docs/deploy.md, "Point dbt at another warehouse"). #}
{{ config(
    materialized='incremental' if target.type == 'duckdb' else 'table',
    incremental_strategy='append',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where response_date between "
        ~ "{{ incremental_window_start() }} and {{ ds() }}{% endif %}",
) }}

{# A nightly run reads its window only; a first or full build reads all history up to ds. #}
{% set window_start = incremental_window_start() if is_incremental() else "date '1900-01-01'" %}

with responses_of_window as (
    select * from {{ ref('int_survey_responses_segmented') }}
    where response_date between {{ window_start }} and {{ ds() }}
),

-- Every response once at its touchpoint and once for the total over touchpoints ('all').
{% set response_columns = ['response_date', 'survey_type', 'score', 'is_favorable', 'is_detractor',
                           'country', 'device_type', 'acquisition_channel', 'lifecycle_stage'] %}
responses as (
    select
        {{ response_columns | join(', ') }},
        touchpoint
    from responses_of_window
    union all
    select
        {{ response_columns | join(', ') }},
        'all' as touchpoint
    from responses_of_window
),

-- Every response once per segment type, and once for everyone (segment 'all').
{% set segments = [
    ("all", "'all'"), ("country", "country"), ("device_type", "device_type"),
    ("acquisition_channel", "acquisition_channel"), ("lifecycle_stage", "lifecycle_stage"),
] %}
responses_by_segment as (
    {% for segment_type, segment_value in segments %}
        select
            response_date,
            survey_type,
            touchpoint,
            score,
            is_favorable,
            is_detractor,
            '{{ segment_type }}' as segment_type,
            {{ segment_value }} as segment_value
        from responses
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        response_date,
        survey_type,
        touchpoint,
        segment_type,
        segment_value,
        count(*) as responses,
        sum(score) as score_sum,
        sum(score * score) as score_sum_squares,
        count(*) filter (where is_favorable) as favorable_responses,
        count(*) filter (where is_detractor) as detractor_responses
    from responses_by_segment
    group by response_date, survey_type, touchpoint, segment_type, segment_value
)

select * from final
