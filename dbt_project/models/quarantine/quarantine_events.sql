{{ config(alias='events') }}
-- Landing rows of events set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('events', ref('stg_events__classified')) }}
