-- One row per ds and landing table: every row read is accounted for exactly once.
-- rows_read comes from the raw table; the other counts from the models that hold the rows.
{% set tables = ['customers', 'items', 'orders', 'order_items', 'events', 'survey_responses',
                 'consents', 'erasure_requests', 'identity_links', 'served_decisions',
                 'campaign_sends'] %}

with
{% for table_name in tables %}
    {{ table_name }}_counts as (
        select
            '{{ table_name }}' as table_name,
            (select count(*) from {{ source('landing', table_name) }}) as rows_read,
            (select count(*) from {{ ref('stg_' ~ table_name) }}) as rows_accepted,
            (
                select count(*) from {{ ref('quarantine_' ~ table_name) }}
                where ds = {{ ds() }} and row_status = 'rejected'
            ) as rows_rejected,
            (
                select count(*) from {{ ref('quarantine_' ~ table_name) }}
                where ds = {{ ds() }} and row_status = 'duplicate'
            ) as rows_duplicate,
            (
                select count(*) from {{ ref('stg_' ~ table_name ~ '__classified') }}
                where row_status = 'later_dated'
            ) as rows_later_dated,
            (
                select count(*) from {{ ref('stg_' ~ table_name ~ '__classified') }}
                where row_status = 'erased'
            ) as rows_erased
    ),
{% endfor %}

all_counts as (
    {% for table_name in tables %}
        select * from {{ table_name }}_counts
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        {{ ds() }} as ds,
        *,
        rows_accepted + rows_rejected + rows_duplicate + rows_later_dated + rows_erased as rows_accounted,
        rows_read = rows_accepted + rows_rejected + rows_duplicate + rows_later_dated + rows_erased
            as is_reconciled
    from all_counts
)

select * from final
