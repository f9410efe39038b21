{# The grain test: no two rows share the combination of columns (dbt_utils' test of the same name and
   arguments, written here because dbt packages come from the dbt hub, out of reach of this network).
   Unlike `unique` on a concatenation, a NULL part neither hides a duplicate nor makes one up: rows are
   grouped on the columns themselves. #}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{%- set columns = combination_of_columns | join(', ') %}
select {{ columns }}, count(*) as rows_sharing_the_key
from {{ model }}
group by {{ columns }}
having count(*) > 1
{% endtest %}
