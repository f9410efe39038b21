"""The online decision service: a serving snapshot the night publishes (ml.serving.snapshot) and the
HTTP service that answers from it (ml.serving.app)."""
