-- One row per weekly cohort (ISO week of the first completed order) and week since then, as of ds.
{{ cohort_retention('week') }}
