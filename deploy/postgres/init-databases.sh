#!/usr/bin/env bash
# Run once by the postgres image on an empty volume: one database for Airflow's metadata, one for
# MLflow's backend store and one for Spark's metastore (used with PZ_WAREHOUSE_ENGINE=spark), all
# owned by POSTGRES_USER.
set -euo pipefail
for database in "$AIRFLOW_DB" "$MLFLOW_DB" "$SPARK_METASTORE_DB"; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\";"
done
