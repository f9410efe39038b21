-- One row per ds, landing table and landing file: every record of every file is accounted for
-- exactly once, with its status for ds. landing_reconciliation sums the same by table.
{% set tables = ['customers', 'items', 'orders', 'order_items', 'events', 'survey_responses',
                 'consents', 'erasure_requests', 'identity_links', 'served_decisions',
                 'campaign_sends'] %}

with
files_read as (
    {% for table_name in tables %}
        select
            '{{ table_name }}' as table_name,
            _source_file as file_name,
            count(*) as rows_read
        from {{ source('landing', table_name) }}
        group by _source_file
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

files_classified as (
    {% for table_name in tables %}
        select
            '{{ table_name }}' as table_name,
            _source_file as file_name,
            count(case when row_status = 'accepted' then 1 end) as rows_accepted,
            count(case when row_status = 'rejected' then 1 end) as rows_rejected,
            count(case when row_status = 'duplicate' then 1 end) as rows_duplicate,
            count(case when row_status = 'later_dated' then 1 end) as rows_later_dated,
            count(case when row_status = 'erased' then 1 end) as rows_erased
        from {{ ref('stg_' ~ table_name ~ '__classified') }}
        group by _source_file
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        {{ ds() }} as ds,
        files_read.table_name,
        files_read.file_name,
        files_read.rows_read,
        coalesce(files_classified.rows_accepted, 0) as rows_accepted,
        coalesce(files_classified.rows_rejected, 0) as rows_rejected,
        coalesce(files_classified.rows_duplicate, 0) as rows_duplicate,
        coalesce(files_classified.rows_later_dated, 0) as rows_later_dated,
        coalesce(files_classified.rows_erased, 0) as rows_erased
    from files_read
    left join files_classified
        on files_read.table_name = files_classified.table_name and files_read.file_name = files_classified.file_name
)

select
    *,
    rows_accepted + rows_rejected + rows_duplicate + rows_later_dated + rows_erased as rows_accounted,
    rows_read = rows_accepted + rows_rejected + rows_duplicate + rows_later_dated + rows_erased as is_reconciled
from final
