{# SQL that differs between the engines the project builds on (DuckDB, the default, and Spark).
   Everything else in the models is written in the SQL both accept; only what cannot be is
   dispatched here (adapter.dispatch: duckdb__ and spark__ implementations). #}

{# Whole days from `start` to `end` (dates or timestamps: calendar days crossed, in UTC). #}
{% macro days_between(start, end) -%}
    {{ return(adapter.dispatch('days_between')(start, end)) }}
{%- endmacro %}

{% macro duckdb__days_between(start, end) -%}
    date_diff('day', {{ start }}, {{ end }})
{%- endmacro %}

{% macro spark__days_between(start, end) -%}
    datediff({{ end }}, {{ start }})
{%- endmacro %}

{# Whole seconds, weeks or months (`grain`) from `start` to `end`. DuckDB counts the boundaries
   crossed, Spark the whole periods elapsed: for weeks and months, pass period starts. #}
{% macro periods_between(grain, start, end) -%}
    {{ return(adapter.dispatch('periods_between')(grain, start, end)) }}
{%- endmacro %}

{% macro duckdb__periods_between(grain, start, end) -%}
    date_diff('{{ grain }}', {{ start }}, {{ end }})
{%- endmacro %}

{% macro spark__periods_between(grain, start, end) -%}
    timestampdiff({{ grain | upper }}, {{ start }}, {{ end }})
{%- endmacro %}

{# The date `periods` weeks or months after the date `start`. #}
{% macro add_periods(grain, start, periods) -%}
    {{ return(adapter.dispatch('add_periods')(grain, start, periods)) }}
{%- endmacro %}

{% macro duckdb__add_periods(grain, start, periods) -%}
    cast({{ start }} + to_{{ grain }}s(cast({{ periods }} as integer)) as date)
{%- endmacro %}

{% macro spark__add_periods(grain, start, periods) -%}
    {%- if grain == 'month' -%}
        add_months({{ start }}, cast({{ periods }} as integer))
    {%- else -%}
        date_add({{ start }}, 7 * cast({{ periods }} as integer))
    {%- endif -%}
{%- endmacro %}

{# One row per whole number from 0 to `last` (inclusive), as a select-list expression. #}
{% macro unnest_zero_to(last) -%}
    {{ return(adapter.dispatch('unnest_zero_to')(last)) }}
{%- endmacro %}

{% macro duckdb__unnest_zero_to(last) -%}
    unnest(range(0, {{ last }} + 1))
{%- endmacro %}

{% macro spark__unnest_zero_to(last) -%}
    explode(sequence(0, {{ last }}))
{%- endmacro %}

{# One row per `step_days`-th day from `start` to `end` (inclusive), as a select-list expression
   of type date. #}
{% macro unnest_days(start, end, step_days=1) -%}
    {{ return(adapter.dispatch('unnest_days')(start, end, step_days)) }}
{%- endmacro %}

{% macro duckdb__unnest_days(start, end, step_days) -%}
    cast(unnest(generate_series({{ start }}, {{ end }}, interval {{ step_days }} day)) as date)
{%- endmacro %}

{% macro spark__unnest_days(start, end, step_days) -%}
    explode(sequence({{ start }}, {{ end }}, interval {{ step_days }} day))
{%- endmacro %}

{# ISO 8601 text to a UTC timestamp, NULL when unreadable; no offset means UTC. Spark converts
   offsets to the session time zone, which the profile sets to UTC. #}
{% macro try_parse_timestamp(text) -%}
    {{ return(adapter.dispatch('try_parse_timestamp')(text)) }}
{%- endmacro %}

{% macro duckdb__try_parse_timestamp(text) -%}
    cast(try_cast({{ text }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__try_parse_timestamp(text) -%}
    try_cast({{ text }} as timestamp)
{%- endmacro %}

{# Whether the whole of `text` matches the regular expression `pattern` (anchored with ^ and $). #}
{% macro matches_pattern(text, pattern) -%}
    {{ return(adapter.dispatch('matches_pattern')(text, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_pattern(text, pattern) -%}
    regexp_matches({{ text }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__matches_pattern(text, pattern) -%}
    ({{ text }} rlike '{{ pattern }}')
{%- endmacro %}

{# The columns of `relation`, quoted and comma-separated: those starting with `prefix` (all when
   none), less those starting with `except_prefix` and those named in `except_names`. The engines
   have no common way to select columns by pattern (DuckDB's COLUMNS, Spark's regex identifiers),
   so the list is read from the catalog when the model runs. #}
{% macro column_list(relation, prefix=none, except_prefix=none, except_names=[]) -%}
    {#- Not built yet (parsing, or compiling, linting or documenting an empty warehouse): nothing to
        read the columns from, and nothing runs this SQL; a build always makes the relation first. -#}
    {%- if not execute or load_relation(relation) is none -%}{{ return('*') }}{%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- set name = column.name -%}
        {%- if (prefix is none or name.startswith(prefix))
            and not (except_prefix is not none and name.startswith(except_prefix))
            and name not in except_names -%}
            {%- do names.append(adapter.quote(name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not names -%}
        {{ exceptions.raise_compiler_error("No column of " ~ relation ~ " is selected: check the prefix and names.") }}
    {%- endif -%}
    {{ return(names | join(', ')) }}
{%- endmacro %}

{# Every column but `columns`, in a select list. Both engines take `* except (...)`, but the SQL
   linter's DuckDB dialect reads only DuckDB's own spelling. #}
{% macro star_except(columns) -%}
    {{ return(adapter.dispatch('star_except')(columns)) }}
{%- endmacro %}

{% macro duckdb__star_except(columns) -%}
    * exclude ({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__star_except(columns) -%}
    * except ({{ columns | join(', ') }})
{%- endmacro %}

{# A timestamp `days` (a column or number) days later. #}
{% macro timestamp_plus_days(timestamp, days) -%}
    {{ return(adapter.dispatch('timestamp_plus_days')(timestamp, days)) }}
{%- endmacro %}

{% macro duckdb__timestamp_plus_days(timestamp, days) -%}
    ({{ timestamp }} + to_days(cast({{ days }} as integer)))
{%- endmacro %}

{% macro spark__timestamp_plus_days(timestamp, days) -%}
    ({{ timestamp }} + make_interval(0, 0, 0, cast({{ days }} as int), 0, 0, 0))
{%- endmacro %}

{# The local wall-clock time in `time_zone` (an IANA name, e.g. Europe/Berlin) of `utc_timestamp`,
   a timestamp without zone that holds UTC (as every landed timestamp does). #}
{% macro utc_to_local(utc_timestamp, time_zone) -%}
    {{ return(adapter.dispatch('utc_to_local')(utc_timestamp, time_zone)) }}
{%- endmacro %}

{% macro duckdb__utc_to_local(utc_timestamp, time_zone) -%}
    timezone({{ time_zone }}, timezone('UTC', {{ utc_timestamp }}))
{%- endmacro %}

{% macro spark__utc_to_local(utc_timestamp, time_zone) -%}
    from_utc_timestamp({{ utc_timestamp }}, {{ time_zone }})
{%- endmacro %}

{# ISO day of week of a timestamp: 1 Monday ... 7 Sunday. #}
{% macro iso_day_of_week(value) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(value)) }}
{%- endmacro %}

{% macro duckdb__iso_day_of_week(value) -%}
    isodow({{ value }})
{%- endmacro %}

{% macro spark__iso_day_of_week(value) -%}
    (dayofweek({{ value }}) + 5) % 7 + 1
{%- endmacro %}
