{# Customer segmentation rules, used by customer_360 and by the metrics' lifecycle segment. #}

{# Lifecycle stage from whole-day counts between dates (as recency_days), as of a date; NULL
   counts mean "never ordered":
   prospect     signed up more than new_customer_days ago, never ordered
   new          signed up, or first ordered, within new_customer_days
   churned      no completed order for churn_days
   reactivated  ordered within at_risk_days after a gap of at least churn_days
   at_risk      no completed order for at_risk_days
   active       everything else #}
{% macro lifecycle_stage(days_since_signup, days_since_first_order, days_since_last_order, days_between_last_two_orders) -%}
    case
        when {{ days_since_last_order }} is null
            then case when {{ days_since_signup }} < {{ var('new_customer_days') }} then 'new' else 'prospect' end
        when {{ days_since_last_order }} >= {{ var('churn_days') }} then 'churned'
        when {{ days_since_first_order }} < {{ var('new_customer_days') }} then 'new'
        when {{ days_between_last_two_orders }} >= {{ var('churn_days') }}
            and {{ days_since_last_order }} < {{ var('at_risk_days') }} then 'reactivated'
        when {{ days_since_last_order }} >= {{ var('at_risk_days') }} then 'at_risk'
        else 'active'
    end
{%- endmacro %}

{# A 1-5 score by quintile of `order_by` among the rows of the window; ties share a score, so the
   result does not depend on row order. #}
{% macro quintile_score(order_by) -%}
    least(5, 1 + cast(floor(5 * percent_rank() over (order by {{ order_by }})) as integer))
{%- endmacro %}

{# Named RFM segments from recency and frequency-monetary scores (1-5, 5 best). #}
{% macro rfm_segment(recency_score, frequency_score, monetary_score, frequency) -%}
    case
        when coalesce({{ frequency }}, 0) = 0 then 'no_purchase'
        when {{ recency_score }} >= 4 and ({{ frequency_score }} + {{ monetary_score }}) / 2.0 >= 4 then 'champions'
        when {{ recency_score }} >= 4 and {{ frequency }} = 1 then 'new_customers'
        when {{ recency_score }} >= 3 and ({{ frequency_score }} + {{ monetary_score }}) / 2.0 >= 3 then 'loyal'
        when {{ recency_score }} >= 3 then 'potential_loyalists'
        when ({{ frequency_score }} + {{ monetary_score }}) / 2.0 >= 4 then 'cant_lose_them'
        when ({{ frequency_score }} + {{ monetary_score }}) / 2.0 >= 3 then 'at_risk'
        when {{ recency_score }} = 1 and ({{ frequency_score }} + {{ monetary_score }}) / 2.0 < 2 then 'lost'
        else 'hibernating'
    end
{%- endmacro %}

{% macro age_band(birth_year, on_date) -%}
    case
        when {{ birth_year }} is null then 'unknown'
        when year({{ on_date }}) - {{ birth_year }} < 18 then 'under_18'
        when year({{ on_date }}) - {{ birth_year }} < 25 then '18-24'
        when year({{ on_date }}) - {{ birth_year }} < 35 then '25-34'
        when year({{ on_date }}) - {{ birth_year }} < 45 then '35-44'
        when year({{ on_date }}) - {{ birth_year }} < 55 then '45-54'
        when year({{ on_date }}) - {{ birth_year }} < 65 then '55-64'
        else '65_plus'
    end
{%- endmacro %}

{# First day of the incremental window: ds minus the lookback for late-arriving rows. #}
{% macro incremental_window_start() -%}
    ({{ ds() }} - interval {{ var('incremental_lookback_days') }} day)
{%- endmacro %}
