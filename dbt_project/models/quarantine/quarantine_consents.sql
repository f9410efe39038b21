{{ config(alias='consents') }}
-- Landing rows of consents set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('consents', ref('stg_consents__classified')) }}
