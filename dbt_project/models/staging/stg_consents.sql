-- The accepted consents as of ds: typed, validated, de-duplicated (see stg_consents__classified).
{{ accepted_rows(ref('stg_consents__classified')) }}
