{#
  One row per day, customer, event type and item category (null for events without an item):
  the count of events. Incremental by date like fct_cx_responses_daily, so engagement windows
  read days of counts, not the event history. Erasure removes a customer from every past day.
#}
{# On Spark the table is rebuilt each run: its parquet tables cannot delete the window or purge
   erased customers (see docs/deploy.md, "Point dbt at another warehouse"). #}
{{ config(
    materialized='incremental' if target.type == 'duckdb' else 'table',
    incremental_strategy='append',
    pre_hook=[
        "{% if is_incremental() %}delete from {{ this }} where event_date between "
        ~ "{{ incremental_window_start() }} and {{ ds() }}{% endif %}",
        "{{ purge_erased_customers() }}",
    ],
) }}

{# A nightly run reads its window only; a first or full build reads all history up to ds. #}
{% set window_start = incremental_window_start() if is_incremental() else "date '1900-01-01'" %}

with events as (
    select * from {{ ref('stg_events') }}
    where occurred_at >= {{ window_start }} and occurred_at < {{ ds_end() }}
),

items as (
    select
        item_id,
        category
    from {{ ref('stg_items') }}
),

final as (
    select
        cast(events.occurred_at as date) as event_date,
        events.customer_id,
        events.event_type,
        items.category,
        count(*) as event_count
    from events
    left join items on events.item_id = items.item_id
    group by all
)

select * from final
