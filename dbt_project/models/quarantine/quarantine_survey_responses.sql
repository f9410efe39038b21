{{ config(alias='survey_responses') }}
-- Landing rows of survey_responses set aside for ds, each with its reason and the landing text as it came.
{{ quarantined_rows('survey_responses', ref('stg_survey_responses__classified')) }}
