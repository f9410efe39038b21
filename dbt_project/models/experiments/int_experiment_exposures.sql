{#
  One row per exposed customer and experiment version whose goal window ended by the end of ds: the
  customer's first assignment (group, offer), the outcome in the window (orders, revenue, and for an
  engagement goal the active days), the same before it (the CUPED covariate) and what contacting
  them in the window cost, and whether the online service served them the audience's decision in the
  window (was_served: exposure, reported beside the intention-to-treat readout). read_experiments
  reads it (ml.activation.readout). Data up to ds only: assignments before ds, orders, events and
  served decisions before the end of ds.
#}
{{ config(materialized='table') }}

with current_goals as (
    {{ config_rows(var('experiment_goals', []), [['audience', 'string'], ['goal_metric', 'string'], ['window_days', 'int']]) }}
),

recorded_versions as (
    {{ recorded_versions() }}
),

versions as (
    select
        audience,
        experiment_version,
        goal_metric,
        window_days
    from recorded_versions
    union all
    -- assignments written before versions were recorded are read with tonight's goals
    select
        audience,
        'unversioned' as experiment_version,
        goal_metric,
        window_days
    from current_goals
),

assignments_so_far as (
    {{ assignments_so_far() }}
),

assignments as (
    select
        *,
        coalesce(experiment_version, 'unversioned') as version
    from assignments_so_far
    where ds < {{ ds() }}
),

first_assignments as (
    select
        audience,
        version as experiment_version,
        customer_id,
        min(ds) as assigned_on,
        min_by(experiment_group, ds) as experiment_group,
        min_by(offer_code, ds) as offer_code,
        -- the arm an uplift policy or a Thompson draw gave the customer, treated or held out (the
        -- readout's stratum; NULL: fixed random arms), and the logged probability of the group
        min_by(policy_arm, ds) as policy_arm,
        min_by(assignment_probability, ds) as assignment_probability
    from assignments
    group by all
),

started as (
    select
        audience,
        experiment_version,
        min(assigned_on) as started_on
    from first_assignments
    group by audience, experiment_version
),

numbered as (
    select
        audience,
        experiment_version,
        row_number() over (partition by audience order by started_on, experiment_version) as version_number
    from started
),

exposed as (
    select
        first_assignments.*,
        numbered.version_number,
        versions.goal_metric,
        versions.window_days,
        first_assignments.assigned_on + versions.window_days as ready_on,
        cast(first_assignments.assigned_on + 1 as timestamp) as window_start,
        cast(first_assignments.assigned_on + 1 + versions.window_days as timestamp) as window_end,
        cast(first_assignments.assigned_on + 1 - {{ var('pre_period_days') }} as timestamp) as pre_start
    from first_assignments
    inner join versions
        on
            first_assignments.audience = versions.audience
            and first_assignments.experiment_version = versions.experiment_version
    inner join numbered
        on
            first_assignments.audience = numbered.audience
            and first_assignments.experiment_version = numbered.experiment_version
    where first_assignments.assigned_on + versions.window_days <= {{ ds() }}
),

orders as (
    select
        customer_id,
        ordered_at,
        total_amount
    from {{ ref('int_completed_orders') }}
    where ordered_at < cast({{ ds() }} + 1 as timestamp)
),

activity as (
    select
        customer_id,
        ordered_at as happened_at
    from orders
    union all
    select
        customer_id,
        occurred_at as happened_at
    from {{ ref('stg_events') }}
    where occurred_at < cast({{ ds() }} + 1 as timestamp)
),

outcomes as (
    select
        exposed.audience,
        exposed.experiment_version,
        exposed.customer_id,
        count(orders.customer_id) filter (where orders.ordered_at >= exposed.window_start) as orders,
        coalesce(sum(orders.total_amount) filter (where orders.ordered_at >= exposed.window_start), 0) as revenue,
        count(orders.customer_id) filter (where orders.ordered_at < exposed.window_start) as pre_orders,
        coalesce(sum(orders.total_amount) filter (where orders.ordered_at < exposed.window_start), 0) as pre_revenue
    from exposed
    left join orders
        on
            exposed.customer_id = orders.customer_id
            and exposed.pre_start <= orders.ordered_at
            and exposed.window_end > orders.ordered_at
    group by all
),

engaged as (
    select
        exposed.audience,
        exposed.experiment_version,
        exposed.customer_id,
        count(
            distinct case when activity.happened_at >= exposed.window_start then cast(activity.happened_at as date) end
        ) as active_days,
        count(
            distinct case when activity.happened_at < exposed.window_start then cast(activity.happened_at as date) end
        ) as pre_active_days
    from exposed
    inner join activity
        on
            exposed.customer_id = activity.customer_id
            and exposed.pre_start <= activity.happened_at
            and exposed.window_end > activity.happened_at
    where exposed.goal_metric = 'engagement'
    group by all
),

served as (
    -- Exposure: the online service served this audience's decision to the customer (or to an
    -- anonymous id a login linked to them) in the goal window, treated arm or control. Assignment
    -- stays the unit of analysis (intention to treat); this only says how many were reached.
    select distinct
        exposed.audience,
        exposed.experiment_version,
        exposed.customer_id
    from exposed
    inner join (
        select
            coalesce(decisions.customer_id, graph.customer_id) as customer_id,
            decisions.audience,
            decisions.experiment_version,
            decisions.served_at
        from {{ ref('stg_served_decisions') }} as decisions
        left join {{ ref('stg_identity_graph') }} as graph
            on decisions.customer_id is null and decisions.anonymous_id = graph.anonymous_id
    ) as decisions
        on
            exposed.customer_id = decisions.customer_id
            and exposed.audience = decisions.audience
            and exposed.experiment_version = decisions.experiment_version
            and exposed.window_start <= decisions.served_at
            and exposed.window_end > decisions.served_at
),

contact_costs as (
    {{ contact_costs() }}
),

contacts as (
    -- Treated customers' contacts in their goal window (control rows are never sent).
    select
        exposed.audience,
        exposed.experiment_version,
        exposed.customer_id,
        sum(contact_costs.cost) as contact_cost
    from exposed
    inner join assignments
        on
            exposed.audience = assignments.audience
            and exposed.experiment_version = assignments.version
            and exposed.customer_id = assignments.customer_id
            and exposed.assigned_on <= assignments.ds
            and exposed.ready_on > assignments.ds
            and assignments.experiment_group != 'control'
    cross join lateral {{ elements_of('assignments.channels', 'channel') }} as contacted -- noqa: ST05
    inner join contact_costs on contacted.channel = contact_costs.channel
    group by all
)

select
    exposed.audience,
    exposed.experiment_version,
    exposed.version_number,
    exposed.customer_id,
    exposed.experiment_group,
    exposed.assigned_on,
    exposed.ready_on,
    exposed.goal_metric,
    exposed.window_days,
    outcomes.revenue,
    outcomes.orders,
    outcomes.pre_revenue,
    exposed.offer_code,
    exposed.policy_arm,
    exposed.assignment_probability,
    case
        when exposed.goal_metric = 'engagement' then coalesce(engaged.active_days, 0) > 0 else outcomes.orders > 0
    end as converted,
    case
        when exposed.goal_metric = 'engagement' then coalesce(engaged.pre_active_days, 0) else outcomes.pre_orders
    end as pre_goal,
    coalesce(contacts.contact_cost, 0) as contact_cost,
    served.customer_id is not null as was_served
from exposed
inner join outcomes
    on
        exposed.audience = outcomes.audience
        and exposed.experiment_version = outcomes.experiment_version
        and exposed.customer_id = outcomes.customer_id
left join engaged
    on
        exposed.audience = engaged.audience
        and exposed.experiment_version = engaged.experiment_version
        and exposed.customer_id = engaged.customer_id
left join contacts
    on
        exposed.audience = contacts.audience
        and exposed.experiment_version = contacts.experiment_version
        and exposed.customer_id = contacts.customer_id
left join served
    on
        exposed.audience = served.audience
        and exposed.experiment_version = served.experiment_version
        and exposed.customer_id = served.customer_id
