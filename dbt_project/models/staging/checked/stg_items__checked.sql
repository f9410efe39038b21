-- Every landing row of items, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_items__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('items', ['item_id', 'name', 'category', 'price', 'tags', 'is_active', 'url', 'image_url']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_item_id') }} as item_id,
        {{ clean_text('raw_name') }} as item_name,
        lower({{ clean_text('raw_category') }}) as category,
        {{ parse_decimal('raw_price') }} as price,
        {{ clean_text('raw_tags') }} as tags,
        {{ clean_text('raw_url') }} as url,
        {{ clean_text('raw_image_url') }} as image_url,
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
            {{ reject_out_of_range('url', "lower(url) like 'http%://%'", 'a URL starts with http:// or https://') }}
            {{ reject_out_of_range('image_url', "lower(image_url) like 'http%://%'",
                                   'a URL starts with http:// or https://') }}
        end as reject_reason
    from parsed
)

select * from checked
