{# A snapshot per ds (replaced when ds is rerun), kept across --full-refresh: past snapshots cannot be rebuilt. #}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='ds', full_refresh=false) }}
-- One row per ds, monthly cohort (month of the first completed order) and month since then, as of ds.
{{ cohort_retention('month') }}
