-- depends_on: {{ ref('stg_orders__classified') }}
{{ config(alias='order_items') }}
-- Landing rows of order_items set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('order_items', ref('stg_order_items__classified')) }}
