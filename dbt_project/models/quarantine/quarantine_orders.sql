{{ config(alias='orders') }}
-- Landing rows of orders set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('orders', ref('stg_orders__classified')) }}
