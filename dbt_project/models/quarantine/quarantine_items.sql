{{ config(alias='items') }}
-- Landing rows of items set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('items', ref('stg_items__classified')) }}
