-- The accepted survey_responses as of ds: typed, validated, de-duplicated (see stg_survey_responses__classified).
{{ accepted_rows(ref('stg_survey_responses__classified')) }}
