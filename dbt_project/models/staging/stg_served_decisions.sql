-- The accepted served decisions as of ds (see stg_served_decisions__classified).
{{ accepted_rows(ref('stg_served_decisions__classified')) }}
