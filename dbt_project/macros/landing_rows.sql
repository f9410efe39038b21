{#
  The landing rows a parse-once model (models/staging/checked) reads, with their lineage columns,
  the sha256 of the file load they came in (`_source_sha256`, from the loader's ledger
  raw.landing_files) and the version of the staging checks that judged them (`_checks_version`,
  the var `checks_version`: a hash of the staging SQL and macros that the pipeline passes).
  An incremental run reads only the rows of files loaded since the model last ran (new files, and
  files that changed and were re-loaded); withdraw_stale_checked_rows removes what they replace.
  Spark rebuilds these models whole each run (they are tables there).
#}
{% macro landing_rows(table_name, columns) -%}
    select
        {{ raw_columns(columns) }},
        landing_files.sha256 as _source_sha256,
        '{{ var("checks_version") }}' as _checks_version
    from {{ source('landing', table_name) }} as landing
    inner join {{ source('loader', 'landing_files') }} as landing_files
        on landing_files.table_name = '{{ table_name }}' and landing.{{ adapter.quote('_source_file') }} = landing_files.file_name
    {%- if is_incremental() %}
        anti join (select distinct _source_file, _source_sha256 from {{ this }}) as checked_files
            on landing_files.file_name = checked_files._source_file and landing_files.sha256 = checked_files._source_sha256
    {%- endif %}
{%- endmacro %}

{# Pre-hook of the parse-once models: remove the rows of files that were re-loaded or withdrawn since
   (their file and sha256 are no longer in the ledger), and every row when the staging checks changed
   (a new release's checks must judge every row again). #}
{% macro withdraw_stale_checked_rows() -%}
    {%- set table_name = this.identifier | replace('stg_', '', 1) | replace('__checked', '') -%}
    {{ return(purge_rows_where(
        "_checks_version <> '" ~ var('checks_version') ~ "' or not exists (select 1 from "
        ~ source('loader', 'landing_files') ~ " as landing_files where landing_files.table_name = '"
        ~ table_name ~ "' and landing_files.file_name = _source_file and landing_files.sha256 = _source_sha256)"
    )) }}
{%- endmacro %}

{# Pre-hook of the classified models: remove the rows whose landing row is no longer the one parsed
   (its file re-loaded or withdrawn, or the checks changed): they no longer match a row of the
   parse-once model by file, sha256 and checks version. #}
{% macro withdraw_stale_classified_rows() -%}
    {%- set checked = this.incorporate(path={'identifier': this.identifier | replace('__classified', '__checked')}) -%}
    {{ return(purge_rows_where(
        "(_source_file, _source_sha256, _checks_version) not in (select distinct _source_file, _source_sha256, "
        ~ "_checks_version from " ~ checked ~ ")"
    )) }}
{%- endmacro %}
