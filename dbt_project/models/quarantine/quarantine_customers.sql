{{ config(alias='customers') }}
-- Landing rows of customers set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('customers', ref('stg_customers__classified')) }}
