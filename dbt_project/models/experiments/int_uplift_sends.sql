{#
  One row per randomized send whose goal window ended by the end of ds, with its outcome: what the
  uplift models (ml.uplift) learn the effect of a message from. Two sources, one shape:
    campaign_sends  past and running campaigns the company landed (an ESP's sends with their control
                    group), with each campaign's goal from configuration (uplift.campaigns)
    audience        the platform's own assignments (int_experiment_exposures: the first assignment of
                    each customer and experiment version, holdout included)
  decided_on is the last day whose data the send could have used: the uplift features are the
  snapshot of that day or the one before it (never later). Data up to ds only.
#}
{{ config(materialized='table') }}

with campaign_goals as (
    {{ config_rows(var('campaign_goals', []), [['campaign_id', 'string'], ['goal_metric', 'string'],
                                               ['window_days', 'int']]) }}
),

sends as (
    select
        sends.campaign_id,
        sends.customer_id,
        sends.channel,
        sends.arm,
        sends.is_control,
        sends.sent_at,
        sends.assignment_probability,
        goals.goal_metric,
        goals.window_days,
        {{ timestamp_plus_days('sends.sent_at', 'goals.window_days') }} as window_end
    from {{ ref('stg_campaign_sends') }} as sends
    inner join campaign_goals as goals on sends.campaign_id = goals.campaign_id
    where {{ timestamp_plus_days('sends.sent_at', 'goals.window_days') }} <= cast({{ ds() }} + 1 as timestamp)
),

orders as (
    select
        customer_id,
        ordered_at,
        total_amount
    from {{ ref('int_completed_orders') }}
    where ordered_at < cast({{ ds() }} + 1 as timestamp)
),

send_orders as (
    select
        sends.campaign_id,
        sends.customer_id,
        sends.sent_at,
        count(orders.customer_id) as orders,
        coalesce(sum(orders.total_amount), 0) as revenue
    from sends
    left join orders
        on
            sends.customer_id = orders.customer_id
            and sends.sent_at <= orders.ordered_at
            and sends.window_end > orders.ordered_at
    group by all
),

send_activity as (
    select
        sends.campaign_id,
        sends.customer_id,
        sends.sent_at
    from sends
    inner join {{ ref('stg_events') }} as events
        on
            sends.customer_id = events.customer_id
            and sends.sent_at <= events.occurred_at
            and sends.window_end > events.occurred_at
    where sends.goal_metric = 'engagement'
    group by all
),

landed as (
    select
        'campaign_sends' as send_source,
        sends.campaign_id,
        cast(null as string) as experiment_version,
        sends.customer_id,
        sends.channel,
        sends.arm,
        sends.is_control,
        sends.sent_at,
        cast(sends.sent_at as date) - 1 as decided_on,
        sends.assignment_probability,
        cast(null as string) as offer_code,
        cast(null as string) as policy_arm,
        sends.goal_metric,
        sends.window_days,
        send_orders.orders,
        send_orders.revenue,
        case
            when sends.goal_metric = 'engagement' then send_activity.customer_id is not null or send_orders.orders > 0
            else send_orders.orders > 0
        end as converted
    from sends
    inner join send_orders
        on
            sends.campaign_id = send_orders.campaign_id
            and sends.customer_id = send_orders.customer_id
            and sends.sent_at = send_orders.sent_at
    left join send_activity
        on
            sends.campaign_id = send_activity.campaign_id
            and sends.customer_id = send_activity.customer_id
            and sends.sent_at = send_activity.sent_at
),

audiences as (
    select
        'audience' as send_source,
        audience as campaign_id,
        experiment_version,
        customer_id,
        cast(null as string) as channel,
        experiment_group as arm,
        experiment_group = 'control' as is_control,
        cast(assigned_on + 1 as timestamp) as sent_at,
        assigned_on as decided_on,
        -- as logged with the assignment; older assignments: from the version's definition (ml.uplift.dataset)
        assignment_probability,
        offer_code,
        -- an uplift-decided customer could only get this arm (or the holdout): its arm's stratum
        policy_arm,
        goal_metric,
        window_days,
        orders,
        revenue,
        converted
    from {{ ref('int_experiment_exposures') }}
)

select * from landed
union all
select * from audiences
