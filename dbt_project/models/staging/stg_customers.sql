-- The accepted customers as of ds: typed, validated, de-duplicated (see stg_customers__classified).
{{ accepted_rows(ref('stg_customers__classified')) }}
