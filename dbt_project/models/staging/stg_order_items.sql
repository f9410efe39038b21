-- The accepted order_items as of ds: typed, validated, de-duplicated (see stg_order_items__classified).
{{ accepted_rows(ref('stg_order_items__classified')) }}
