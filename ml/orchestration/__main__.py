"""`python -m ml.orchestration run|backfill|demo|setup|standalone|airflow`: see ml.orchestration.dag_runs."""

import sys

from ml.orchestration.dag_runs import main

sys.exit(main())
