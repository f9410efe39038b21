"""Both recommender families are what the package calls them through (ml.recommender.family)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ml.recommender.ease import EaseRecommender
from ml.recommender.family import Recommender
from ml.recommender.model import HybridRecommender

PROTOCOL_FIELDS = {"settings", "epochs", "trained_through", "history"}


@pytest.mark.parametrize("family", [HybridRecommender, EaseRecommender])
def test_a_family_recommends_with_the_protocols_signature_and_carries_its_fields(family):
    assert inspect.signature(family.recommend) == inspect.signature(Recommender.recommend)
    assert {field.name for field in dataclasses.fields(family)} >= PROTOCOL_FIELDS
