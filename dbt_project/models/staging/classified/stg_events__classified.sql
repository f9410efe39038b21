-- One row per landing row of behavioral events, parsed, with its status for ds and the reason. An
-- anonymous visitor's event (customer_id empty, anonymous_id given) takes the customer its anonymous id
-- was linked to by ds (stg_identity_graph); until a login links it, it waits in quarantine as
-- unlinked_anonymous_id, and is accepted on the night its link arrives.
with checked as (
    select *
    from {{ ref('stg_events__checked') }}
),

links as (
    select
        anonymous_id as linked_anonymous_id,
        customer_id as linked_customer_id
    from {{ ref('stg_identity_graph') }}
),

resolved as (
    select
        {{ star_except(['customer_id', 'linked_anonymous_id', 'linked_customer_id']) }},
        coalesce(checked.customer_id, links.linked_customer_id) as customer_id
    from checked
    left join links on checked.customer_id is null and checked.anonymous_id = links.linked_anonymous_id
)

{% set unlinked -%}
    when customer_id is null
        then 'unlinked_anonymous_id: no login links anonymous_id = ''' || anonymous_id || ''' to a customer as of ds'
{%- endset %}

{{ classify_rows(
    'resolved',
    key_columns=['event_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='occurred_at >= ' ~ ds_end(),
    reference_checks=[
        unlinked,
        reject_unknown('customer_id', ref('stg_customers'), 'customer_id', 'unknown_customer'),
        reject_unknown('item_id', ref('stg_items'), 'item_id', 'unknown_item'),
    ],
) }}
