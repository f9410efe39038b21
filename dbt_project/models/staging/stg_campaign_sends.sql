-- The accepted campaign sends as of ds: typed, validated, de-duplicated (see stg_campaign_sends__classified).
{{ accepted_rows(ref('stg_campaign_sends__classified')) }}
