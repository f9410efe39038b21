-- The accepted events as of ds: typed, validated, de-duplicated (see stg_events__classified).
{{ accepted_rows(ref('stg_events__classified')) }}
