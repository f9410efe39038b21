{# Lenient parsing of landing text: each returns NULL when the text cannot be read, so the
   checks in staging can tell "missing" (empty text) from "unparseable" (text, but no value). #}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{# ISO 8601; no offset means UTC (the session time zone is UTC). Stored as UTC timestamp. #}
{% macro parse_timestamp(column) -%}
    {{ try_parse_timestamp(clean_text(column)) }}
{%- endmacro %}

{% macro parse_decimal(column) -%}
    try_cast({{ clean_text(column) }} as decimal(18, 2))
{%- endmacro %}

{# Whole numbers only: '4' and '4.0' parse, '4.5' and 'four' do not. #}
{% macro parse_integer(column) -%}
    case
        when try_cast({{ clean_text(column) }} as double) = floor(try_cast({{ clean_text(column) }} as double))
            then cast(try_cast({{ clean_text(column) }} as double) as bigint)
    end
{%- endmacro %}

{% macro parse_boolean(column) -%}
    case
        when lower({{ clean_text(column) }}) in ('true', 't', '1', 'yes', 'y') then true
        when lower({{ clean_text(column) }}) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}
