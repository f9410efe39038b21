-- One row per landing row of items, parsed, with its status for ds and the reason.
-- Items carry no date: the catalog as landed applies to every ds.
with source_rows as (
    select {{ raw_columns(['item_id', 'name', 'category', 'price', 'tags', 'is_active']) }}
    from {{ source('landing', 'items') }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_item_id') }} as item_id,
        {{ clean_text('raw_name') }} as item_name,
        lower({{ clean_text('raw_category') }}) as category,
        {{ parse_decimal('raw_price') }} as price,
        {{ clean_text('raw_tags') }} as tags,
        coalesce({{ parse_boolean('raw_is_active') }}, {{ clean_text('raw_is_active') }} is null) as is_active
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('item_id') }}
            {{ reject_unparseable('price', 'number') }}
            when {{ clean_text('raw_is_active') }} is not null and {{ parse_boolean('raw_is_active') }} is null
                then 'invalid_value: is_active = ''' || raw_is_active || ''' is not true or false'
            {{ reject_out_of_range('price', 'price >= 0', 'a price cannot be negative') }}
        end as reject_reason
    from parsed
)

{{ classify_rows('checked', key_columns=['item_id']) }}
