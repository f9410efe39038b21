"""The recommender: baselines now; the LightFM model, registry and scoring build on them (issue 5)."""
