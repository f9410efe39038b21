{# Row checks for staging. Each renders one `when <failed> then '<reason_code>: <detail>'` arm
   of a CASE; the first failing check gives the row's reason. `raw_<column>` is the landing text,
   `<column>` the parsed value. #}

{% macro raw_columns(columns) -%}
    {%- for column in columns %}
    {{ adapter.quote(column) }} as raw_{{ column }},
    {%- endfor %}
    _source_file,
    _source_row,
    _load_error
{%- endmacro %}

{% macro reject_unreadable() -%}
    when _load_error is not null then _load_error
{%- endmacro %}

{% macro reject_missing(column) -%}
    when {{ clean_text('raw_' ~ column) }} is null then 'missing_required: {{ column }} is empty'
{%- endmacro %}

{% macro reject_unparseable(column, kind) -%}
    when {{ clean_text('raw_' ~ column) }} is not null and {{ column }} is null
        then 'unparseable_{{ kind }}: {{ column }} = ''' || raw_{{ column }} || ''' is not a valid {{ kind }}'
{%- endmacro %}

{% macro reject_not_in(column, allowed) -%}
    when {{ column }} is not null and {{ column }} not in ('{{ allowed | join("', '") }}')
        then 'invalid_value: {{ column }} = ''' || raw_{{ column }} || ''' is not one of {{ allowed | join(", ") }}'
{%- endmacro %}

{% macro reject_out_of_range(column, condition, expected) -%}
    when {{ column }} is not null and not ({{ condition }})
        then 'out_of_range: {{ column }} = ' || cast({{ column }} as string) || ' ({{ expected }})'
{%- endmacro %}

{% macro reject_unknown(column, parent_relation, parent_column, reason_code) -%}
    when {{ column }} is not null
        and {{ column }} not in (select {{ parent_column }} from {{ parent_relation }})
        then '{{ reason_code }}: {{ column }} = ''' || {{ column }} || ''' is not known as of ds'
{%- endmacro %}

{# Customers with an erasure request. Erasure applies to every ds, reruns and backfills of earlier
   dates included: once a person asked to be forgotten, no run may bring their data back. Read
   from the raw source so that every staging model, customers included, can use it. #}
{% macro erased_customer_ids() -%}
    (
        select distinct {{ clean_text('customer_id') }} as customer_id
        from {{ source('landing', 'erasure_requests') }}
        where _load_error is null and {{ parse_timestamp('requested_at') }} is not null
            and {{ clean_text('customer_id') }} is not null
    )
{%- endmacro %}

{# Pre-hook for tables that keep customer rows across runs: erasure reaches every past partition. #}
{% macro purge_erased_customers() -%}
    {%- if is_incremental() -%}
        {{ return(adapter.dispatch('purge_erased_customers')()) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__purge_erased_customers() -%}
    delete from {{ this }} where customer_id in {{ erased_customer_ids() }}
{%- endmacro %}

{# Spark's parquet tables cannot delete rows: the partitions (ds, or the model's partition_by)
   that hold erased customers are copied without them to a work table, then overwritten from it (a
   table cannot be overwritten from itself). Runs its statements here; the hook renders empty. #}
{% macro spark__purge_erased_customers() -%}
    {%- if execute -%}
        {%- set partition = config.get('partition_by') or 'ds' -%}
        {%- set work_table = this ~ '__purge' -%}
        {%- do run_query('drop table if exists ' ~ work_table) -%}
        {%- do run_query('create table ' ~ work_table ~ ' using parquet as select * from ' ~ this
            ~ ' where ' ~ partition ~ ' in (select ' ~ partition ~ ' from ' ~ this
            ~ ' where customer_id in ' ~ erased_customer_ids() ~ ')'
            ~ ' and customer_id not in ' ~ erased_customer_ids()) -%}
        {%- do run_query('insert overwrite table ' ~ this ~ ' partition (' ~ partition ~ ') select * from '
            ~ work_table) -%}
        {%- do run_query('drop table ' ~ work_table) -%}
    {%- endif -%}
{%- endmacro %}
