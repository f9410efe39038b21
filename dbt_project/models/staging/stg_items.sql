-- The accepted items as of ds: typed, validated, de-duplicated (see stg_items__classified).
{{ accepted_rows(ref('stg_items__classified')) }}
