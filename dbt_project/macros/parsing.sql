{# Lenient parsing of landing text: each returns NULL when the text cannot be read, so the
   checks in staging can tell "missing" (empty text) from "unparseable" (text, but no value). #}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{# ISO 8601 (a date, or a date and time with an optional UTC offset); no offset means UTC (the
   session time zone is UTC). Stored as UTC timestamp. The engines' own casts also read words
   ('infinity', 'epoch'), offsets no place has (+99:00) and years no customer lives in, so the text
   must have the ISO shape, a year from 1900 to 2199 and an offset within -14:00..+14:00
   (docs/data-contract.md). One pattern checks all three: a second cast for a range check cost as
   much as the first. #}
{% macro parse_timestamp(column) -%}
    {%- set text = clean_text(column) -%}
    case when {{ matches_pattern(text, iso_timestamp_pattern()) }} then {{ try_parse_timestamp(text) }} end
{%- endmacro %}

{% macro iso_timestamp_pattern() -%}
    ^(19|2[01])[0-9]{2}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?)?(Z|z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$
{%- endmacro %}

{% macro parse_decimal(column) -%}
    try_cast({{ clean_text(column) }} as decimal(18, 2))
{%- endmacro %}

{# Whole numbers only: '4' and '4.0' parse, '4.5', 'four', 'NaN', 'inf' and magnitudes of 1e15
   or more do not (NaN compares greater than every number on both engines, so the bound also
   keeps it out of the cast, which would fail the whole build). #}
{% macro parse_integer(column) -%}
    {%- set number = 'try_cast(' ~ clean_text(column) ~ ' as double)' -%}
    case
        when abs({{ number }}) < 1e15 and {{ number }} = floor({{ number }})
            then cast({{ number }} as bigint)
    end
{%- endmacro %}

{% macro parse_boolean(column) -%}
    case
        when lower({{ clean_text(column) }}) in ('true', 't', '1', 'yes', 'y') then true
        when lower({{ clean_text(column) }}) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}

{# An email address as mail systems take it (lower-cased first): a local part of letters, digits
   and . _ % + -, an @, and a domain with a dot (RFC 5321's lengths). No quote: Spark and DuckDB
   escape one differently inside a string literal, and the two engines must agree. #}
{% macro email_pattern() -%}
    ^[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}([.][a-z0-9-]{1,63})*[.][a-z]{2,63}$
{%- endmacro %}

{# An ISO 639 language code, lower-cased, with an optional region or script (en, pt-br, zh-hant). #}
{% macro language_pattern() -%}
    ^[a-z]{2,3}([-_][a-z0-9]{2,8})*$
{%- endmacro %}
