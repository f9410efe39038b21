{# Customer-experience formulas. Each lives here once; every model that reports them calls these.
   Aggregate formulas take additive counts (so days roll up into weeks, months and rolling windows
   by summing) and return NULL when there are no responses. Percentages are 0-100. #}

{# ---- response level ---- #}

{# NPS 0-10: promoter 9-10, passive 7-8, detractor 0-6. #}
{% macro nps_category(score) -%}
    case
        when {{ score }} >= 9 then 'promoter'
        when {{ score }} >= 7 then 'passive'
        when {{ score }} >= 0 then 'detractor'
    end
{%- endmacro %}

{# The favorable answer of each survey: CSAT 4-5 (satisfied), CES 5-7 (easy), NPS 9-10 (promoter). #}
{% macro is_favorable_response(survey_type, score) -%}
    case {{ survey_type }}
        when 'csat' then {{ score }} >= 4
        when 'ces' then {{ score }} >= 5
        when 'nps' then {{ score }} >= 9
    end
{%- endmacro %}

{% macro is_detractor_response(survey_type, score) -%}
    ({{ survey_type }} = 'nps' and {{ score }} <= 6)
{%- endmacro %}

{# ---- aggregate level ---- #}

{% macro percent_of(part, whole) -%}
    case when {{ whole }} > 0 then 100 * cast({{ part }} as double) / {{ whole }} end
{%- endmacro %}

{% macro mean_of(total, count) -%}
    case when {{ count }} > 0 then cast({{ total }} as double) / {{ count }} end
{%- endmacro %}

{# Wilson score interval for a proportion (Wilson 1927), 95%, in percent. Stays inside 0-100 and
   behaves at p = 0, p = 1 and small n, where the normal approximation does not. #}
{% macro wilson_bound(successes, count, side) -%}
    {%- set z = 1.959964 -%}
    case when {{ count }} > 0 then 100.0 * (
        ({{ successes }} / {{ count }} + {{ z * z }} / (2.0 * {{ count }}))
        {{ '-' if side == 'lower' else '+' }} {{ z }} * sqrt(
            ({{ successes }} / {{ count }}) * (1 - {{ successes }} / {{ count }}) / {{ count }}
            + {{ z * z }} / (4.0 * {{ count }} * {{ count }})
        )
    ) / (1 + {{ z * z }} / {{ count }}) end
{%- endmacro %}

{# NPS = % promoters - % detractors, from -100 to 100. #}
{% macro nps_value(promoters, detractors, count) -%}
    case when {{ count }} > 0 then 100 * cast({{ promoters }} - {{ detractors }} as double) / {{ count }} end
{%- endmacro %}

{# 95% interval of NPS from the trinomial variance of (promoter = +1, passive = 0, detractor = -1):
   var = (p_promoter + p_detractor - nps^2) / n, with nps as a fraction; clipped to -100..100. #}
{% macro nps_bound(promoters, detractors, count, side) -%}
    {%- set z = 1.959964 -%}
    case when {{ count }} > 0 then {{ 'greatest(-100.0, ' if side == 'lower' else 'least(100.0, ' }}
        100.0 * (
            ({{ promoters }} - {{ detractors }}) / {{ count }}
            {{ '-' if side == 'lower' else '+' }} {{ z }} * sqrt(greatest(0.0,
                (({{ promoters }} + {{ detractors }}) / {{ count }}
                    - power(({{ promoters }} - {{ detractors }}) / {{ count }}, 2)) / {{ count }}
            ))
        )) end
{%- endmacro %}

{# 95% normal interval of a mean from its sum and sum of squares (sample standard deviation);
   NULL below two responses. #}
{% macro mean_bound(total, total_of_squares, count, side) -%}
    {%- set z = 1.959964 -%}
    case when {{ count }} > 1 then
        {{ total }} / {{ count }} {{ '-' if side == 'lower' else '+' }} {{ z }} * sqrt(greatest(0.0,
            ({{ total_of_squares }} - {{ total }} * {{ total }} / {{ count }}) / ({{ count }} - 1)
        )) / sqrt({{ count }})
    end
{%- endmacro %}

{# Every reported metric value from the additive counts of one group of responses. Expects the
   columns survey_type, responses, score_sum, score_sum_squares, favorable_responses and
   detractor_responses; returns metric, value, ci_lower, ci_upper, mean_score, percent_favorable,
   percent_detractors, is_low_sample; values rounded to 4 decimals.
   CSAT: value = % satisfied (4-5), Wilson interval. CES: value = mean 1-7, normal interval.
   NPS: value = % promoters - % detractors, trinomial interval. #}
{% macro cx_metric_columns() -%}
    survey_type as metric,
    responses,
    round(case survey_type
        when 'csat' then {{ percent_of('favorable_responses', 'responses') }}
        when 'ces' then {{ mean_of('score_sum', 'responses') }}
        when 'nps' then {{ nps_value('favorable_responses', 'detractor_responses', 'responses') }}
    end, 4) as value,
    round(case survey_type
        when 'csat' then {{ wilson_bound('favorable_responses', 'responses', 'lower') }}
        when 'ces' then {{ mean_bound('score_sum', 'score_sum_squares', 'responses', 'lower') }}
        when 'nps' then {{ nps_bound('favorable_responses', 'detractor_responses', 'responses', 'lower') }}
    end, 4) as ci_lower,
    round(case survey_type
        when 'csat' then {{ wilson_bound('favorable_responses', 'responses', 'upper') }}
        when 'ces' then {{ mean_bound('score_sum', 'score_sum_squares', 'responses', 'upper') }}
        when 'nps' then {{ nps_bound('favorable_responses', 'detractor_responses', 'responses', 'upper') }}
    end, 4) as ci_upper,
    round({{ mean_of('score_sum', 'responses') }}, 4) as mean_score,
    round({{ percent_of('favorable_responses', 'responses') }}, 4) as percent_favorable,
    round(case when survey_type = 'nps' then {{ percent_of('detractor_responses', 'responses') }} end, 4)
        as percent_detractors,
    responses < {{ var('low_sample_threshold') }} as is_low_sample
{%- endmacro %}

{# ---- exact aggregates ---- #}

{# Sample standard deviation of a whole-number column from exact integer sums. The engines'
   stddev_samp adds doubles in whatever order the threads finish, so two runs of the same data
   differed in the 15th digit; integer sums are exact in any order, so a rerun is bit-identical. #}
{% macro stddev_samp_of_integers(column) -%}
    case
        when count({{ column }}) > 1 then sqrt(
            greatest(
                cast(count({{ column }}) * sum(cast({{ column }} as bigint) * cast({{ column }} as bigint))
                    - sum(cast({{ column }} as bigint)) * sum(cast({{ column }} as bigint)) as double),
                0
            ) / (count({{ column }}) * (count({{ column }}) - 1))
        )
    end
{%- endmacro %}
