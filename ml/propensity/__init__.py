"""Propensity to buy: point-in-time training set from Feast, calibrated gradient boosting, scoring."""
