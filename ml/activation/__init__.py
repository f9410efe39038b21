"""Audiences and channel activation: decisions, holdouts, channel tables and files."""
