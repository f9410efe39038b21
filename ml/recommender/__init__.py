"""The recommender: interactions, hybrid LightFM, evaluation, registry gate and batch scoring."""
