{{ config(alias='erasure_requests') }}
-- Landing rows of erasure_requests set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('erasure_requests', ref('stg_erasure_requests__classified')) }}
