"""The item catalog: categories, prices, tags and popularity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ml.synthetic.arrays import _ids
from ml.synthetic.behaviour import CATEGORIES, CATEGORY_PRICE_MEDIAN, CATEGORY_TAGS
from ml.synthetic.settings import GeneratorSettings

# ----------------------------------------------------------------------------- catalog

SHOP_URL = "https://shop.example.com"  # example.com: reserved for documentation (RFC 2606), never a real shop


@dataclass
class Catalog:
    table: pa.Table
    category: np.ndarray  # category index per item
    price: np.ndarray
    cumulative_popularity: np.ndarray  # within-category popularity, items sorted by category
    category_mass_start: np.ndarray  # per category, where its mass starts in the cumulative

    def sample_items(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw an item per category from the category's long-tail popularity."""
        offsets = self.category_mass_start[categories] + rng.random(len(categories))
        return np.minimum(np.searchsorted(self.cumulative_popularity, offsets, side="right"), len(self.category) - 1)


def make_catalog(settings: GeneratorSettings, rng: np.random.Generator) -> Catalog:
    n_items, n_categories = settings.n_items, len(CATEGORIES)
    category = np.sort(rng.choice(n_categories, size=n_items, p=np.full(n_categories, 1 / n_categories)))
    # Long tail: within a category, popularity falls as a Zipf law of a random rank.
    popularity = np.empty(n_items)
    category_mass_start = np.zeros(n_categories)
    for index in range(n_categories):
        members = np.flatnonzero(category == index)
        ranks = rng.permutation(len(members)) + 1
        weights = 1.0 / ranks**1.1
        popularity[members] = weights / weights.sum()
        category_mass_start[index] = index  # each category holds mass 1 in the cumulative
    cumulative = np.cumsum(popularity)
    price = np.round(CATEGORY_PRICE_MEDIAN[category] * rng.lognormal(0, 0.45, n_items), 2)
    is_active = rng.random(n_items) > 0.05
    tags = [
        "|".join(rng.choice(CATEGORY_TAGS[CATEGORIES[c]], size=rng.integers(1, 4), replace=False)) for c in category
    ]
    names = [f"{CATEGORIES[c].title()} item {i + 1}" for i, c in enumerate(category)]
    item_ids = _ids("I", np.arange(1, n_items + 1), 5)
    slugs = [f"{CATEGORIES[c]}/{item_id.lower()}" for c, item_id in zip(category, item_ids.to_pylist(), strict=True)]
    table = pa.table(
        {
            "item_id": item_ids,
            "name": pa.array(names),
            "category": pa.array(CATEGORIES[category]),
            "price": pa.array(price),
            "tags": pa.array(tags),
            "is_active": pa.array(is_active),
            "url": pa.array([f"{SHOP_URL}/p/{slug}" for slug in slugs]),
            "image_url": pa.array([f"{SHOP_URL}/img/{slug}.jpg" for slug in slugs]),
        }
    )
    return Catalog(table, category, price, cumulative, category_mass_start)
