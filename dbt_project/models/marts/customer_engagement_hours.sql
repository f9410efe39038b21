{#
  One row per ds, customer, channel and local hour of week in which the customer engaged on that
  channel in the `send_time_history_days` days up to ds: what the send-time model
  (ml/activation/send_time.py) learns each customer's best hour from. A channel's engagement is its
  events of `send_time_events` (e.g. email: email_open and email_click), weighted; the local time
  is the customer's country's time zone (`send_time_zones`, else `send_time_default_zone`), daylight
  saving included.
#}
{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh like customer_360. #}
{{ config(
    pre_hook="{{ purge_erased_customers() }}",
) }}

with zones as (
    {{ config_rows(var('send_time_zones', []), [['country', 'string'], ['time_zone', 'string']]) }}
),

channel_events as (
    {{ config_rows(var('send_time_events', []), [['channel', 'string'], ['event_type', 'string'],
                                                   ['weight', 'double']]) }}
),

customers as (
    select
        customer_360.customer_id,
        coalesce(zones.time_zone, '{{ var("send_time_default_zone", "UTC") }}') as time_zone
    from {{ ref('customer_360') }} as customer_360
    left join zones on customer_360.country = zones.country
    where customer_360.ds = {{ ds() }}
),

engagement as (
    select
        events.customer_id,
        channel_events.channel,
        channel_events.weight,
        {{ utc_to_local('events.occurred_at', 'customers.time_zone') }} as local_at
    from {{ ref('stg_events') }} as events
    inner join channel_events on events.event_type = channel_events.event_type
    inner join customers on events.customer_id = customers.customer_id
    where
        events.occurred_at < {{ ds_end() }}
        and cast(events.occurred_at as date) > {{ ds() }} - {{ var('send_time_history_days', 90) }}
)

select
    {{ ds() }} as ds,
    customer_id,
    channel,
    {{ iso_day_of_week('local_at') }} as day_of_week,
    hour(local_at) as hour_of_day,
    sum(weight) as engagement
from engagement
group by customer_id, channel, {{ iso_day_of_week('local_at') }}, hour(local_at)
