{#
  One row per anonymous id a login tied to a customer by the end of ds: the identity graph that
  stitches anonymous history (events, served decisions) to the customer.
  The rule: deterministic links only (a login event: stg_identity_links), and the first login of an
  anonymous id keeps it; a later login of the same anonymous id to another customer does not move
  it (conflicting_links counts them, for a person to look at). Customers are never merged with each
  other, so holdout and arm buckets (hashes of the customer id) are never split or moved: the
  anonymous history joins the customer's. Consent and erasure follow the customer.
#}
select
    anonymous_id,
    -- the earliest login, the customer id breaking a tie: the same answer on every engine
    min_by(customer_id, concat(cast(linked_at as string), '|', customer_id)) as customer_id,
    min(linked_at) as first_linked_at,
    count(*) as links,
    count(distinct customer_id) - 1 as conflicting_links
from {{ ref('stg_identity_links') }}
group by anonymous_id
