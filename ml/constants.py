"""Names and defaults shared across the package: one place, so every module agrees."""

import datetime as dt

SEED = 42
DEFAULT_K = 10  # recommendations per customer
SCORING_BATCH_SIZE = 512  # customers per matrix product when scoring (512 measured fastest on 2 cores)

# Column names used across stages.
CUSTOMER_ID = "customer_id"
ITEM_ID = "item_id"

# Lineage columns that the landing loader adds to every raw row.
SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
LOAD_ERROR = "_load_error"

# The calendar grid of feature snapshots and propensity cutoffs: every cutoff_every_days days from this
# date, a Sunday (so every Sunday with the default 7). Fixed, so the grid does not move with ds.
FEATURE_GRID_ANCHOR = dt.date(2000, 1, 2)

# Warehouse schemas.
RAW_SCHEMA = "raw"
QUARANTINE_SCHEMA = "quarantine"


# Defaults of the demo data set: 5,000 customers over 180 days, a small bad-row rate.
DEMO_CUSTOMERS = 5_000
DEMO_DAYS = 180
DEMO_BAD_ROW_RATE = 0.005
# A fixed end date keeps the demo deterministic: the data never depends on "today".
DEMO_END_DATE = "2026-10-31"
