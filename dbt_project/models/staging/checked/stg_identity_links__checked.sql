-- Every landing row of identity links (a login that tied an anonymous visitor to a customer), parsed
-- and checked once: in the night its file arrived (or changed). stg_identity_links__classified gives
-- each row its status for ds.
with source_rows as (
    {{ landing_rows('identity_links', ['anonymous_id', 'customer_id', 'linked_at']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_anonymous_id') }} as anonymous_id,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_linked_at') }} as linked_at
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('anonymous_id') }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('linked_at') }}
            {{ reject_unparseable('linked_at', 'timestamp') }}
        end as reject_reason
    from parsed
)

select * from checked
