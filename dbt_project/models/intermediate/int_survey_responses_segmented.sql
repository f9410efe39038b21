-- One row per survey response, with the customer's segments at the time of the response:
-- country, device, acquisition channel, and lifecycle stage as of the response.
-- Incremental facts read only the responses of their window (see fct_cx_responses_daily).
with responses as (
    select * from {{ ref('stg_survey_responses') }}
),

customers as (
    select * from {{ ref('stg_customers') }}
),

completed_orders as (
    select
        customer_id,
        ordered_at,
        completed_order_number,
        previous_completed_order_at
    from {{ ref('int_orders_sequenced') }}
    where is_completed
),

order_history_at_response as (
    select
        responses.response_id,
        min(completed_orders.ordered_at) as first_order_at,
        max(completed_orders.ordered_at) as last_order_at,
        max_by(completed_orders.previous_completed_order_at, completed_orders.completed_order_number)
            as order_before_last_at
    from responses
    inner join completed_orders
        on
            responses.customer_id = completed_orders.customer_id
            and responses.responded_at > completed_orders.ordered_at
    group by responses.response_id
),

final as (
    select
        responses.response_id,
        responses.customer_id,
        responses.responded_at,
        cast(responses.responded_at as date) as response_date,
        responses.survey_type,
        responses.score,
        coalesce(responses.touchpoint, 'unknown') as touchpoint,
        {{ is_favorable_response('responses.survey_type', 'responses.score') }} as is_favorable,
        {{ is_detractor_response('responses.survey_type', 'responses.score') }} as is_detractor,
        coalesce(customers.country, 'unknown') as country,
        coalesce(customers.device_type, 'unknown') as device_type,
        coalesce(customers.acquisition_channel, 'unknown') as acquisition_channel,
        {{ lifecycle_stage(
            days_between('cast(customers.signup_at as date)', 'cast(responses.responded_at as date)'),
            days_between('cast(history.first_order_at as date)', 'cast(responses.responded_at as date)'),
            days_between('cast(history.last_order_at as date)', 'cast(responses.responded_at as date)'),
            days_between('cast(history.order_before_last_at as date)', 'cast(history.last_order_at as date)'),
        ) }} as lifecycle_stage
    from responses
    inner join customers on responses.customer_id = customers.customer_id
    left join order_history_at_response as history on responses.response_id = history.response_id
)

select * from final
