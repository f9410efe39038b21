"""The personalization platform's Python package: data generation, landing, and (later) models."""
