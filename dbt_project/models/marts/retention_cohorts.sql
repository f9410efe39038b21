-- One row per monthly cohort (month of the first completed order) and month since then, as of ds.
{{ cohort_retention('month') }}
