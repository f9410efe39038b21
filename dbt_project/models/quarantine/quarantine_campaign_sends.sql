{{ config(alias='campaign_sends') }}
-- Landing rows of campaign sends set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('campaign_sends', ref('stg_campaign_sends__classified')) }}
