{#
  One row per ds and customer known as of that ds (erased customers are absent): who they are, what they
  bought (RFM, historical CLV), where they are in their lifecycle, how they engage, what they told
  us in surveys, and which channels they consented to as of ds.
#}
{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh: past snapshots cannot be rebuilt. #}
{# Erasure also removes the customer from the snapshots of earlier dates. #}
{{ config(
    pre_hook="{{ purge_erased_customers() }}",
) }}

{% set event_types = var('event_types') %}
{% set engagement_windows = var('engagement_windows') %}
{% set consent_channels = var('consent_channels') %}

with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select * from {{ ref('int_orders_sequenced') }}
),

order_stats as (
    select
        customer_id,
        count(*) filter (where is_completed) as frequency,
        coalesce(sum(total_amount) filter (where is_completed), 0) as monetary,
        count(*) as orders_placed,
        count(*) filter (where status = 'refunded') as orders_refunded,
        count(*) filter (where status = 'cancelled') as orders_cancelled,
        min(ordered_at) filter (where is_completed) as first_order_at,
        max(ordered_at) filter (where is_completed) as last_order_at,
        max_by(previous_completed_order_at, completed_order_number) filter (where is_completed)
            as order_before_last_at
    from orders
    group by customer_id
),

buyers_scored as (
    select
        customer_id,
        {{ quintile_score('last_order_at') }} as recency_score,
        {{ quintile_score('frequency') }} as frequency_score,
        {{ quintile_score('monetary') }} as monetary_score
    from order_stats
    where frequency > 0
),

engagement as (
    select
        customer_id,
        {% for event_type in event_types %}
            {% for window_days in engagement_windows %}
                coalesce(sum(event_count) filter (
                    where event_type = '{{ event_type }}' and event_date > {{ ds() }} - {{ window_days }}
                ), 0) as {{ event_type }}_events_{{ window_days }}d,
            {% endfor %}
        {% endfor %}
        max(event_date) as last_event_date
    from {{ ref('fct_customer_events_daily') }}
    where event_date > {{ ds() }} - {{ engagement_windows | max }} and event_date <= {{ ds() }}
    group by customer_id
),

latest_surveys as (
    select
        customer_id,
        max_by(score, responded_at) filter (where survey_type = 'nps') as latest_nps_score,
        max(responded_at) filter (where survey_type = 'nps') as latest_nps_at,
        max_by(score, responded_at) filter (where survey_type = 'csat') as latest_csat_score,
        max_by(score, responded_at) filter (where survey_type = 'ces') as latest_ces_score,
        count(*) filter (where touchpoint like 'support%') as support_contacts_surveyed
    from {{ ref('stg_survey_responses') }}
    group by customer_id
),

purchased_categories as (
    select
        orders.customer_id,
        items.category,
        sum(order_items.quantity) as units
    from orders
    inner join {{ ref('stg_order_items') }} as order_items on orders.order_id = order_items.order_id
    inner join {{ ref('stg_items') }} as items on order_items.item_id = items.item_id
    where orders.is_completed and items.category is not null
    group by all
),

viewed_categories as (
    select
        customer_id,
        category,
        sum(event_count) as units
    from {{ ref('fct_customer_events_daily') }}
    where
        event_type = 'product_view' and category is not null
        and event_date > {{ ds() }} - 90 and event_date <= {{ ds() }}
    group by all
),

category_candidates as (
    select
        customer_id,
        category,
        'purchases' as source,
        0 as source_rank,
        units
    from purchased_categories
    union all
    select
        customer_id,
        category,
        'views' as source,
        1 as source_rank,
        units
    from viewed_categories
),

-- Most units bought; for customers who never bought, most viewed over 90 days. Ties: by name.
preferred_categories as (
    select
        customer_id,
        category as preferred_category,
        source as preferred_category_source
    from category_candidates
    qualify row_number() over (partition by customer_id order by source_rank asc, units desc, category asc) = 1
),

consents_in_force as (
    select
        customer_id,
        channel,
        max_by(granted, recorded_at) as granted
    from {{ ref('stg_consents') }}
    group by all
),

consents_by_channel as (
    select
        {% for channel in consent_channels %}
            coalesce(bool_or(granted) filter (where channel = '{{ channel }}'), false)
                as has_consent_{{ channel }},
        {% endfor %}
        customer_id
    from consents_in_force
    group by customer_id
),

final as (
    select
        {{ ds() }} as ds,
        customers.customer_id,
        customers.signup_at,
        {{ days_between('cast(customers.signup_at as date)', ds()) }} as tenure_days,
        customers.country,
        customers.city,
        customers.language,
        customers.gender,
        {{ age_band('customers.birth_year', ds()) }} as age_band,
        customers.device_type,
        customers.acquisition_channel,
        coalesce(order_stats.frequency, 0) as frequency,
        coalesce(order_stats.monetary, 0) as monetary,
        coalesce(order_stats.monetary, 0) as historical_clv,
        case when order_stats.frequency > 0 then cast(order_stats.monetary as double) / order_stats.frequency end
            as average_order_value,
        coalesce(order_stats.orders_placed, 0) as orders_placed,
        coalesce(order_stats.orders_refunded, 0) as orders_refunded,
        coalesce(order_stats.orders_cancelled, 0) as orders_cancelled,
        order_stats.first_order_at,
        order_stats.last_order_at,
        {{ days_between('cast(order_stats.last_order_at as date)', ds()) }} as recency_days,
        buyers_scored.recency_score,
        buyers_scored.frequency_score,
        buyers_scored.monetary_score,
        {{ rfm_segment('buyers_scored.recency_score', 'buyers_scored.frequency_score',
                       'buyers_scored.monetary_score', 'order_stats.frequency') }} as rfm_segment,
        {{ lifecycle_stage(
            days_between('cast(customers.signup_at as date)', ds()),
            days_between('cast(order_stats.first_order_at as date)', ds()),
            days_between('cast(order_stats.last_order_at as date)', ds()),
            days_between('cast(order_stats.order_before_last_at as date)', 'cast(order_stats.last_order_at as date)'),
        ) }} as lifecycle_stage,
        latest_surveys.latest_nps_score,
        {{ nps_category('latest_surveys.latest_nps_score') }} as latest_nps_category,
        latest_surveys.latest_nps_at,
        latest_surveys.latest_csat_score,
        latest_surveys.latest_ces_score,
        coalesce(latest_surveys.support_contacts_surveyed, 0) as support_contacts_surveyed,
        preferred_categories.preferred_category,
        preferred_categories.preferred_category_source,
        {% for event_type in event_types %}
            {% for window_days in engagement_windows %}
                coalesce(engagement.{{ event_type }}_events_{{ window_days }}d, 0)
                    as {{ event_type }}_events_{{ window_days }}d,
            {% endfor %}
        {% endfor %}
        engagement.last_event_date,
        {% for channel in consent_channels %}
            coalesce(consents_by_channel.has_consent_{{ channel }}, false) as has_consent_{{ channel }},
        {% endfor %}
        customers.email,
        customers.first_name
    from customers
    left join order_stats on customers.customer_id = order_stats.customer_id
    left join buyers_scored on customers.customer_id = buyers_scored.customer_id
    left join engagement on customers.customer_id = engagement.customer_id
    left join latest_surveys on customers.customer_id = latest_surveys.customer_id
    left join preferred_categories on customers.customer_id = preferred_categories.customer_id
    left join consents_by_channel on customers.customer_id = consents_by_channel.customer_id
)

select * from final
