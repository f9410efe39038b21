{#
  Point-in-time customer feature snapshots for the propensity model and the Feast feature store:
  one row per customer and feature_date, computed only from what was known by the end of that
  date. The dates lie on a calendar grid that does not move with ds: every
  `feature_snapshot_every_days` days from `feature_grid_anchor` (a Sunday: with the default 7 days,
  every Sunday), back over the training window and horizon so each training cutoff has its
  snapshot, plus ds itself (what scoring reads). A night builds ds and the grid dates the table
  does not hold yet, so one or two dates, not the whole window: a grid date, once built, keeps the
  values known when it was built (rows that arrive later, dated before it, do not change it).
  Erasure removes a customer from every date.
#}
{# Spark's parquet tables cannot delete: there the table is partitioned by feature_date and a run
   overwrites the partitions it writes. A feature added in a new release becomes a new column of an
   existing table (null on the snapshot dates no run rebuilds any more) instead of being dropped. #}
{{ config(
    materialized='incremental', unique_key='feature_date', full_refresh=false,
    on_schema_change='append_new_columns',
    incremental_strategy='insert_overwrite' if target.type == 'spark' else 'delete+insert',
    partition_by='feature_date' if target.type == 'spark' else none,
    pre_hook="{{ purge_erased_customers() }}",
) }}

{% set event_types = var('event_types') %}
{% set engagement_windows = var('engagement_windows') %}
{% set order_windows = var('order_windows') %}
{% set step_days = var('feature_snapshot_every_days') %}

with window_days as (
    select {{ unnest_days(ds() ~ ' - interval ' ~ var('feature_snapshot_days') ~ ' day', ds()) }} as feature_date
),

feature_dates as (
    select feature_date
    from window_days
    where
        {{ days_between("cast('" ~ var('feature_grid_anchor') ~ "' as date)", 'feature_date') }} % {{ step_days }} = 0
        {% if is_incremental() %}
            and feature_date not in (select distinct feature_date from {{ this }})
        {% endif %}
    union
    select {{ ds() }} as feature_date
),

customers_by_date as (
    select
        feature_dates.feature_date,
        cast(feature_dates.feature_date + interval 1 day as timestamp) as known_by,
        customers.*
    from feature_dates
    inner join {{ ref('stg_customers') }} as customers
        on customers.signup_at < cast(feature_dates.feature_date + interval 1 day as timestamp)
),

completed_orders as (
    select
        customer_id,
        ordered_at,
        order_date,
        total_amount,
        days_since_previous_completed_order
    from {{ ref('int_orders_sequenced') }}
    where is_completed
),

order_features as (
    select
        c.customer_id,
        c.feature_date,
        count(o.ordered_at) as frequency_lifetime,
        coalesce(sum(o.total_amount), 0) as monetary_lifetime,
        {% for window_days in order_windows %}
            count(o.ordered_at) filter (where o.order_date > c.feature_date - {{ window_days }})
                as frequency_{{ window_days }}d,
            coalesce(sum(o.total_amount) filter (where o.order_date > c.feature_date - {{ window_days }}), 0)
                as monetary_{{ window_days }}d,
        {% endfor %}
        min(o.ordered_at) as first_order_at,
        max(o.ordered_at) as last_order_at,
        avg(o.days_since_previous_completed_order) as days_between_orders_mean,
        {{ stddev_samp_of_integers('o.days_since_previous_completed_order') }} as days_between_orders_std,
        max_by(o.days_since_previous_completed_order, o.ordered_at) as days_between_last_two_orders
    from customers_by_date as c
    inner join completed_orders as o on c.customer_id = o.customer_id and c.known_by > o.ordered_at
    group by all
),

event_features as (
    select
        c.customer_id,
        c.feature_date,
        {% for event_type in event_types %}
            {% for window_days in engagement_windows %}
                coalesce(sum(e.event_count) filter (
                    where e.event_type = '{{ event_type }}' and e.event_date > c.feature_date - {{ window_days }}
                ), 0) as {{ event_type }}_events_{{ window_days }}d,
            {% endfor %}
        {% endfor %}
        max(e.event_date) as last_event_date
    from customers_by_date as c
    inner join {{ ref('fct_customer_events_daily') }} as e
        on
            c.customer_id = e.customer_id
            and c.feature_date >= e.event_date
            and c.feature_date - {{ engagement_windows | max }} < e.event_date
    group by all
),

survey_features as (
    select
        c.customer_id,
        c.feature_date,
        max_by(s.score, s.responded_at) filter (where s.survey_type = 'nps') as latest_nps_score,
        max_by(s.score, s.responded_at) filter (where s.survey_type = 'csat') as latest_csat_score,
        max_by(s.score, s.responded_at) filter (where s.survey_type = 'ces') as latest_ces_score,
        count(*) filter (
            where s.touchpoint like 'support%' and s.responded_at >= c.known_by - interval 90 day
        ) as support_contacts_90d
    from customers_by_date as c
    inner join {{ ref('stg_survey_responses') }} as s
        on c.customer_id = s.customer_id and c.known_by > s.responded_at
    group by all
),

final as (
    select
        c.feature_date,
        -- Feast's event timestamp: the snapshot is valid from the end of its day (UTC, microseconds).
        c.known_by as feature_timestamp,
        c.customer_id,
        {{ days_between('cast(c.signup_at as date)', 'c.feature_date') }} as tenure_days,
        coalesce(c.country, 'unknown') as country,
        coalesce(c.gender, 'unknown') as gender,
        {{ age_band('c.birth_year', 'c.feature_date') }} as age_band,
        coalesce(c.device_type, 'unknown') as device_type,
        coalesce(c.acquisition_channel, 'unknown') as acquisition_channel,
        {{ lifecycle_stage(
            days_between('cast(c.signup_at as date)', 'c.feature_date'),
            days_between('cast(o.first_order_at as date)', 'c.feature_date'),
            days_between('cast(o.last_order_at as date)', 'c.feature_date'),
            "o.days_between_last_two_orders",
        ) }} as lifecycle_stage,
        {{ days_between('cast(o.last_order_at as date)', 'c.feature_date') }} as recency_days,
        -- T of buy-till-you-die models (with recency_days and frequency_lifetime: their x and t_x).
        {{ days_between('cast(o.first_order_at as date)', 'c.feature_date') }} as days_since_first_order,
        coalesce(o.frequency_lifetime, 0) as frequency_lifetime,
        cast(coalesce(o.monetary_lifetime, 0) as double) as monetary_lifetime,
        {% for window_days in order_windows %}
            coalesce(o.frequency_{{ window_days }}d, 0) as frequency_{{ window_days }}d,
            cast(coalesce(o.monetary_{{ window_days }}d, 0) as double) as monetary_{{ window_days }}d,
        {% endfor %}
        cast(o.days_between_orders_mean as double) as days_between_orders_mean,
        cast(o.days_between_orders_std as double) as days_between_orders_std,
        {% for event_type in event_types %}
            {% for window_days in engagement_windows %}
                cast(coalesce(e.{{ event_type }}_events_{{ window_days }}d, 0) as bigint)
                    as {{ event_type }}_events_{{ window_days }}d,
            {% endfor %}
        {% endfor %}
        {{ days_between('e.last_event_date', 'c.feature_date') }} as days_since_last_event,
        cast(s.latest_csat_score as double) as latest_csat_score,
        cast(s.latest_ces_score as double) as latest_ces_score,
        coalesce({{ nps_category('s.latest_nps_score') }}, 'no_response') as latest_nps_category,
        coalesce(s.support_contacts_90d, 0) as support_contacts_90d
    from customers_by_date as c
    left join order_features as o on c.customer_id = o.customer_id and c.feature_date = o.feature_date
    left join event_features as e on c.customer_id = e.customer_id and c.feature_date = e.feature_date
    left join survey_features as s on c.customer_id = s.customer_id and c.feature_date = s.feature_date
)

select * from final
