-- One row per landing row of items, parsed, with its status for ds and the reason.
-- Items carry no date: the catalog as landed applies to every ds.
with checked as (
    select *
    from {{ ref('stg_items__checked') }}
)

{{ classify_rows('checked', key_columns=['item_id']) }}
