{#
  Give every landing row exactly one status, in this order of precedence:
    erased       the row belongs to a customer with an erasure request, whatever else is wrong
                 with it (a rejected row would keep the person's data in quarantine)
    rejected     a row check failed (`reject_reason`), or a reference is unknown
    later_dated  the row is dated at or after the end of ds: it belongs to a later date
    duplicate    an older version of a key; the last one read (file name, then row) wins
    accepted     everything else
  Continues the calling model's CTE list. `relation` must have the parsed columns, `reject_reason` from the row checks, and lineage.
  `erased_when` and `later_dated_when` are SQL conditions; `reference_checks` are extra CASE arms
  (reject_unknown) applied only to rows that are neither erased nor later-dated.
#}
{% macro classify_rows(relation, key_columns, erased_when='false', later_dated_when='false', reference_checks=[]) %}
, references_checked as (
    select
        {{ star_except(['reject_reason']) }},
        case
            when {{ erased_when }} then null
            when reject_reason is not null then reject_reason
            when {{ later_dated_when }} then null
            {% for check in reference_checks %}{{ check }}
            {% endfor %}
        end as reject_reason,
        case
            when {{ erased_when }} then 'erased'
            when reject_reason is not null then 'rejected'
            when {{ later_dated_when }} then 'later_dated'
            else 'candidate'
        end as pre_status
    -- Named for the correlated reference checks (absent_from).
    from {{ relation }} as classified_row
),

statused as (
    select
        *,
        case when reject_reason is not null then 'rejected' else pre_status end as status_before_dedup
    from references_checked
),

-- Only keys that occur more than once need ordering: a window over every row would sort the
-- whole table each night to find a handful of re-sent records.
repeated_keys as (
    select {{ key_columns | join(', ') }}
    from statused
    where status_before_dedup = 'candidate'
    group by {{ key_columns | join(', ') }}
    having count(*) > 1
),

repeated_versions as (
    select
        statused.*,
        row_number() over key_versions as version_rank,
        first_value(_source_file || ':' || cast(_source_row as string)) over key_versions as latest_version
    from statused
    -- ON, not USING: Spark puts USING columns first in `statused.*`, and the union below is by position.
    semi join repeated_keys on
        {% for key in key_columns %}statused.{{ key }} = repeated_keys.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    where statused.status_before_dedup = 'candidate'
    window key_versions as (
        partition by {{ key_columns | join(', ') }}
        order by _source_file desc, _source_row desc
    )
),

versioned as (
    select
        statused.*,
        1 as version_rank,
        cast(null as string) as latest_version
    from statused
    anti join repeated_versions on
        statused._source_file = repeated_versions._source_file and statused._source_row = repeated_versions._source_row
    -- Same columns in the same order on both sides (Spark has no UNION BY NAME).
    union all
    select * from repeated_versions
),

final as (
    select
        {{ star_except(['pre_status', 'status_before_dedup', 'version_rank', 'latest_version', 'reject_reason']) }},
        case
            when status_before_dedup <> 'candidate' then status_before_dedup
            when version_rank = 1 then 'accepted'
            else 'duplicate'
        end as row_status,
        case
            when status_before_dedup = 'candidate' and version_rank > 1
                then 'duplicate_key: superseded by the later record at ' || latest_version
            else reject_reason
        end as reason
    from versioned
)

{%- if is_incremental() %}
,

classified as (
    select
        *,
        split_part(reason, ':', 1) as reason_code
    from final
)

{#- Every row is classified for ds, but only the rows whose status or content differ from the table's
    are written (delete+insert by file and row): a night rewrites what the new day changed. #}
select classified.*
from classified
anti join {{ this }} as stored
    on
        classified._source_file = stored._source_file
        and classified._source_row = stored._source_row
        and classified._source_sha256 = stored._source_sha256
        and classified._checks_version = stored._checks_version
        and classified.row_status = stored.row_status
        and classified.reason is not distinct from stored.reason
{%- else %}

select
    *,
    split_part(reason, ':', 1) as reason_code
from final
{%- endif %}
{% endmacro %}

{# The accepted rows of a classified model, without raw text, status and load bookkeeping columns. #}
{% macro accepted_rows(classified_relation) -%}
    select
        {{ column_list(classified_relation, except_prefix='raw_',
                       except_names=['row_status', 'reason', 'reason_code', '_load_error', '_source_sha256',
                                     '_checks_version']) }}
    from {{ classified_relation }}
    where row_status = 'accepted'
{%- endmacro %}

{# Rows set aside for ds (rejected and superseded duplicates), with the landing text as it came. #}
{% macro quarantined_rows(table_name, classified_relation) -%}
    {{ config(pre_hook="{{ purge_erased_from_quarantine() }}") }}
    select
        {{ ds() }} as ds,
        '{{ table_name }}' as table_name,
        row_status,
        reason_code,
        reason,
        _source_file as source_file,
        _source_row as source_row,
        {{ column_list(classified_relation, prefix='raw_') }}
    from {{ classified_relation }}
    where row_status in ('rejected', 'duplicate')
{%- endmacro %}
