{# What the experiment readouts read (models/experiments), built by read_experiments from the tables
   the Python stages wrote (experiments.assignments, experiments.versions) and the warehouse. The
   configuration's economics and goals come as dbt vars from the orchestrator
   (ml.orchestration.config.PlatformConfig.dbt_vars): `exchange_rates`, `contact_costs`,
   `experiment_goals`, `pre_period_days`, `holdout_readout_days`; revenue is int_completed_orders. #}

{# A Python value as an SQL literal (text quoted, booleans and numbers as they are). #}
{% macro sql_literal(value) -%}
    {%- if value is none -%} null
    {%- elif value is sameas true -%} true
    {%- elif value is sameas false -%} false
    {%- elif value is number -%} {{ value }}
    {%- else -%} '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{# Rows given as a list of mappings, as a select with typed `columns` ([name, type] pairs): no row
   at all when the list is empty. #}
{% macro config_rows(rows, columns) -%}
    {%- if rows | length == 0 -%}
        select
        {%- for column in columns %} cast(null as {{ column[1] }}) as {{ column[0] }}{{ "," if not loop.last }}{% endfor %}
        where false
    {%- else -%}
        {%- for row in rows %}
        select
        {%- for column in columns %} cast({{ sql_literal(row[column[0]]) }} as {{ column[1] }}) as {{ column[0] }}{{ "," if not loop.last }}{% endfor %}
        {% if not loop.last %}union all{% endif %}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro contact_costs() -%}
    {{ config_rows(var('contact_costs', []), [['channel', 'string'], ['cost', 'double']]) }}
{%- endmacro %}

{# The relation of a table a Python stage writes, or none before its first night. #}
{% macro written_by_a_stage(source_name, table_name) -%}
    {%- set declared = source(source_name, table_name) -%}
    {{ return(adapter.get_relation(database=declared.database, schema=declared.schema, identifier=declared.identifier)) }}
{%- endmacro %}

{# experiments.assignments, or no row with its columns before the first night that wrote it. #}
{% macro assignments_so_far() -%}
    {%- if written_by_a_stage('experiments', 'assignments') is none -%}
        {{ config_rows([], [['ds', 'date'], ['audience', 'string'], ['customer_id', 'string'],
                            ['experiment_group', 'string'], ['bucket', 'double'], ['salt', 'string'],
                            ['channels', array_of_text()], ['experiment_version', 'string'],
                            ['offer_code', 'string'], ['decided_by', 'string'], ['policy_arm', 'string'],
                            ['assignment_probability', 'double'], ['expected_value', 'double'],
                            ['runner_up', 'string']]) }}
    {%- else -%}
        select * from {{ source('experiments', 'assignments') }}
    {%- endif -%}
{%- endmacro %}

{# experiments.versions' goals, or no row before the first night that wrote it. #}
{% macro recorded_versions() -%}
    {%- if written_by_a_stage('experiments', 'versions') is none -%}
        {{ config_rows([], [['audience', 'string'], ['experiment_version', 'string'], ['goal_metric', 'string'],
                            ['window_days', 'int']]) }}
    {%- else -%}
        select audience, experiment_version, goal_metric, window_days from {{ source('experiments', 'versions') }}
    {%- endif -%}
{%- endmacro %}

{% macro array_of_text() -%}
    {{ return(adapter.dispatch('array_of_text')()) }}
{%- endmacro %}

{% macro duckdb__array_of_text() -%}varchar[]{%- endmacro %}

{% macro spark__array_of_text() -%}array<string>{%- endmacro %}

{# One row per element of an array column, in a lateral subquery: `cross join lateral {{ elements_of('a.channels', 'channel') }} as x`. #}
{% macro elements_of(array, column) -%}
    {{ return(adapter.dispatch('elements_of')(array, column)) }}
{%- endmacro %}

{% macro duckdb__elements_of(array, column) -%}
    (select unnest({{ array }}) as {{ column }})
{%- endmacro %}

{% macro spark__elements_of(array, column) -%}
    (select explode({{ array }}) as {{ column }})
{%- endmacro %}
