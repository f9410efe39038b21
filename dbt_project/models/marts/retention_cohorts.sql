{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh: past snapshots cannot be rebuilt. #}
-- One row per ds, monthly cohort (month of the first completed order) and month since then, as of ds.
{{ cohort_retention('month') }}
