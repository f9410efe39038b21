{{ config(alias='identity_links') }}
-- Landing rows of identity links set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('identity_links', ref('stg_identity_links__classified')) }}
