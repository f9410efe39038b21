{#
  Completed orders and their value in the reporting currency: the one definition of revenue the
  readouts use. An order without a currency (the landing contract makes it optional) is in the
  reporting currency; an order in a currency without a rate still counts as an order, with no value
  (read_experiments warns, naming the currency and the key to set). Rates: the dbt var
  `exchange_rates` (activation.economics, passed by the orchestrator).
#}
{{ config(materialized='view') }}

with orders as (
    select * from {{ ref('int_orders_sequenced') }}
),

rates as (
    {{ config_rows(var('exchange_rates', []), [['currency', 'string'], ['rate', 'double'], ['is_reporting_currency', 'boolean']]) }}
)

select
    orders.customer_id,
    orders.order_id,
    orders.ordered_at,
    orders.total_amount * rates.rate as total_amount
from orders
left join rates
    on orders.currency = rates.currency or (orders.currency is null and rates.is_reporting_currency)
where orders.is_completed
