-- The accepted erasure_requests as of ds: typed, validated, de-duplicated (see stg_erasure_requests__classified).
{{ accepted_rows(ref('stg_erasure_requests__classified')) }}
