{{ config(alias='served_decisions') }}
-- Landing rows of served decisions set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('served_decisions', ref('stg_served_decisions__classified')) }}
