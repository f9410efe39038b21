"""Scratch: the 1M stages after train_recommender, by hand (not committed)."""
import os, sys, shutil, json
sys.path.insert(0, os.path.dirname(__file__))
from bench_nightly import stage_command, run_parallel, END, WORK
from common import run_stage
from ml.config import load_config
data_dir = WORK / "partial_c1000000"
shutil.rmtree(data_dir, ignore_errors=True)
env = {**os.environ, "PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports"),
       "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}", "PZ_DUCKDB_MEMORY_LIMIT": "14GB"}
ds = END.isoformat(); shards = load_config().scoring.shards
print("generate", run_stage([sys.executable, "-m", "ml.synthetic", "--customers", "1000000", "--days", "180", "--end-date", ds, "--out", str(data_dir / "landing")], env), flush=True)
for name in ["load_landing_files", "build_staging", "build_metrics", "build_feature_store", "train_propensity"]:
    print(name, run_stage(stage_command(name, ds), env), flush=True)
print("plan_scores", run_stage(stage_command("plan_scores", ds), env), flush=True)
print("shards", run_parallel([stage_command("score_propensity_shard", ds, n, shards) for n in range(shards)], env, 2), flush=True)
print("merge_scores", run_stage(stage_command("merge_scores", ds, shards), env), flush=True)
for name in ["monitor_drift"]:
    print(name, run_stage(stage_command(name, ds), env), flush=True)
