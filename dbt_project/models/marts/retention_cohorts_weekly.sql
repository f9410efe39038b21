{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh: past snapshots cannot be rebuilt. #}
-- One row per ds, weekly cohort (ISO week of the first completed order) and week since then, as of ds.
{{ cohort_retention('week') }}
