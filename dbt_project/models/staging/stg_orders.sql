-- The accepted orders as of ds: typed, validated, de-duplicated (see stg_orders__classified).
{{ accepted_rows(ref('stg_orders__classified')) }}
