#!/usr/bin/env bash
# Run once by the postgres image on an empty volume: one database for Airflow's metadata and one
# for MLflow's backend store, both owned by POSTGRES_USER.
set -euo pipefail
for database in "$AIRFLOW_DB" "$MLFLOW_DB"; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\";"
done
