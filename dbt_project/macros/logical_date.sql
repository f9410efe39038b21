{# The logical date `ds` and the exclusive end of its day (UTC). Rows dated at or after ds_end
   belong to a later date. #}
{% macro ds() -%}
    {%- set value = var('ds', none) -%}
    {%- if value is none -%}
        {{ exceptions.raise_compiler_error("The dbt var 'ds' is required: pass --vars '{ds: YYYY-MM-DD}'.") }}
    {%- endif -%}
    {%- set text = value | string -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error("The dbt var 'ds' must be a date YYYY-MM-DD, got '" ~ text ~ "'.") }}
    {%- endif -%}
    cast('{{ text }}' as date)
{%- endmacro %}

{% macro ds_end() -%}
    cast({{ ds() }} + interval 1 day as timestamp)
{%- endmacro %}
