{# Fails for every row where the expression is false (a small stand-in for dbt_utils, which
   cannot be installed here: dbt packages come from the dbt hub, out of reach of this network). #}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
