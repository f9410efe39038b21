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

{# `pattern` is a regular expression the whole value must match; `expected` says what in words. #}
{% macro reject_not_matching(column, pattern, expected) -%}
    when {{ column }} is not null and not {{ matches_pattern(column, pattern) }}
        then 'invalid_value: {{ column }} = ''' || raw_{{ column }} || ''' is not {{ expected }}'
{%- endmacro %}

{% macro reject_out_of_range(column, condition, expected) -%}
    when {{ column }} is not null and not ({{ condition }})
        then 'out_of_range: {{ column }} = ' || cast({{ column }} as string) || ' ({{ expected }})'
{%- endmacro %}

{% macro reject_unknown(column, parent_relation, parent_column, reason_code) -%}
    when {{ column }} is not null
        and {{ absent_from(column, parent_relation, parent_column) }}
        then '{{ reason_code }}: {{ column }} = ''' || {{ column }} || ''' is not known as of ds'
{%- endmacro %}

{# True when the row being classified (classify_rows names it `classified_row`) has no match of its
   `column` in `parent_relation`.`parent_column` (where `parent_condition` holds). A correlated NOT
   EXISTS, not `column not in (select ...)`: inside a CASE, Spark plans NOT IN's null-aware
   comparison as a nested loop join, every row against every parent key (at 100k customers one
   staging model ran for over half an hour), where NOT EXISTS's equality is a hash join on both
   engines. The same answer for the non-null keys the callers compare. #}
{% macro absent_from(column, parent_relation, parent_column, parent_condition='true') -%}
    not exists (
        select 1 from {{ parent_relation }} as parent_row
        where parent_row.{{ parent_column }} = classified_row.{{ column }} and {{ parent_condition }}
    )
{%- endmacro %}

{# Customer ids with an erasure request: every request in the landing files, whatever its date
   (fail closed: a request whose date cannot be read still erases; staging quarantines it so a person
   sees it), and every request the erasure ledger (audit.erasure_ledger) has ever recorded, so an
   erasure outlives its landing file. Erasure applies to every ds, reruns and backfills of earlier
   dates included: once a person asked to be forgotten, no run may bring their data back. Read from
   the raw source and the ledger table (not refs: the ledger is built from staging) so that every
   staging model, customers included, can use it. #}
{% macro erased_customer_ids() -%}
    {%- set ledger = erasure_ledger_relation() -%}
    (
        select {{ clean_text('customer_id') }} as customer_id
        from {{ source('landing', 'erasure_requests') }}
        where _load_error is null and {{ clean_text('customer_id') }} is not null
        {%- if ledger is not none %}
        union
        select customer_id from {{ ledger }}
        {%- endif %}
    )
{%- endmacro %}

{# The ledger table when it exists (none before the first build, and while parsing). #}
{% macro erasure_ledger_relation() -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set database = none if target.type == 'spark' else target.database -%}
    {{ return(adapter.get_relation(database=database, schema='audit', identifier='erasure_ledger')) }}
{%- endmacro %}

{# Pre-hook for tables that keep customer rows across runs: erasure reaches every past partition.
   `condition` selects the rows to remove (default: the customer_id column names an erased customer). #}
{% macro purge_erased_customers(condition=none) -%}
    {{ return(purge_rows_where(condition or ('customer_id in ' ~ erased_customer_ids()))) }}
{%- endmacro %}

{# Remove the rows matching `condition` from an incremental model before its run (nothing on a
   first build). #}
{% macro purge_rows_where(condition) -%}
    {%- if is_incremental() -%}
        {{ return(adapter.dispatch('purge_rows')(condition)) }}
    {%- endif -%}
{%- endmacro %}

{# Pre-hook of the quarantine tables: rows of erased customers leave every past ds too, found by
   the landing text of their customer id, or for order lines by their order's. The quarantine of
   erasure requests keeps its rows: they are the record of the request itself. #}
{% macro purge_erased_from_quarantine() -%}
    {%- if is_incremental() and execute -%}
        {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if this.identifier == 'erasure_requests' -%}
        {%- elif 'raw_customer_id' in names -%}
            {{ return(purge_erased_customers('trim(raw_customer_id) in ' ~ erased_customer_ids())) }}
        {%- elif 'raw_order_id' in names -%}
            {{ return(purge_erased_customers("trim(raw_order_id) in (select order_id from "
                ~ ref('stg_orders__classified') ~ " where row_status = 'erased')")) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__purge_rows(condition) -%}
    delete from {{ this }} where {{ condition }}
{%- endmacro %}

{# Spark's parquet tables cannot delete rows: the partitions (the model's partition_by) that hold
   rows to remove, or the whole table when it has none, are copied without them to a work table,
   then overwritten from it (a table cannot be overwritten from itself). Runs its statements here;
   the hook renders empty. #}
{% macro spark__purge_rows(condition) -%}
    {%- if execute -%}
        {%- set partition = config.get('partition_by') -%}
        {%- set work_table = this ~ '__purge' -%}
        {%- do run_query('drop table if exists ' ~ work_table) -%}
        {%- if partition -%}
            {%- do run_query('create table ' ~ work_table ~ ' using parquet as select * from ' ~ this
                ~ ' where ' ~ partition ~ ' in (select ' ~ partition ~ ' from ' ~ this
                ~ ' where ' ~ condition ~ ') and not coalesce(' ~ condition ~ ', false)') -%}
            {%- do run_query('insert overwrite table ' ~ this ~ ' partition (' ~ partition ~ ') select * from '
                ~ work_table) -%}
        {%- else -%}
            {%- do run_query('create table ' ~ work_table ~ ' using parquet as select * from ' ~ this
                ~ ' where not coalesce(' ~ condition ~ ', false)') -%}
            {%- do run_query('insert overwrite table ' ~ this ~ ' select * from ' ~ work_table) -%}
        {%- endif -%}
        {%- do run_query('drop table ' ~ work_table) -%}
    {%- endif -%}
{%- endmacro %}

{# Pre-hook of the erasure ledger: a run of an earlier ds than a request's first_applied_ds drops
   that row, and the model appends it again with this ds (only requests still in the landing files,
   which this run applies; a request whose file is gone keeps its row). #}
{% macro supersede_later_ledger_entries() -%}
    {{ return(purge_rows_where(
        'first_applied_ds > ' ~ ds() ~ ' and customer_id in (select customer_id from '
        ~ ref('stg_erasure_requests__classified') ~ ' where customer_id is not null and _load_error is null)'
    )) }}
{%- endmacro %}

{# Pre-hook of the tables with one partition per ds: a run replaces its ds whole, so a ds whose new
   result is empty (the bad rows of a landing file fixed and re-landed) loses its old rows too;
   delete+insert and insert_overwrite only replace the partitions the new rows name. #}
{% macro clear_ds_partition() -%}
    {%- if is_incremental() -%}
        {{ return(adapter.dispatch('clear_ds_partition')()) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__clear_ds_partition() -%}
    delete from {{ this }} where ds = {{ ds() }}
{%- endmacro %}

{% macro spark__clear_ds_partition() -%}
    alter table {{ this }} drop if exists partition (ds = '{{ var('ds') }}')
{%- endmacro %}
