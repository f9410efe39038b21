-- The accepted identity links as of ds: typed, validated, de-duplicated (see stg_identity_links__classified).
{{ accepted_rows(ref('stg_identity_links__classified')) }}
