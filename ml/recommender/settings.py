"""The `recommender` section: interactions, the model search, evaluation and scoring."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ml.constants import SCORING_BATCH_SIZE
from ml.mlops.settings import ChampionGateConfig
from ml.settings import StrictSettings

INTERACTION_KINDS = ("purchase", "add_to_cart", "product_view")


class LightFMSettings(StrictSettings):
    """Hyperparameters of the hybrid LightFM model; the search tries overrides of these."""

    family: Literal["lightfm"] = Field("lightfm", description="Model family (search entries may pick `ease`).")
    loss: Literal["warp", "bpr", "warp-kos", "logistic"] = Field("warp", description="LightFM loss.")
    no_components: int = Field(32, gt=0, description="Embedding dimension.")
    learning_rate: float = Field(0.05, gt=0, description="SGD learning rate (adagrad schedule).")
    item_alpha: float = Field(0.0, ge=0, description="L2 penalty on item features.")
    user_alpha: float = Field(0.0, ge=0, description="L2 penalty on user features.")
    max_epochs: int = Field(30, gt=0, description="Upper bound on epochs; early stopping picks the number.")
    user_feature_weight: float = Field(
        0.1, ge=0, description="Weight of a customer's segment features next to their own id (0: ids only)."
    )
    item_feature_weight: float = Field(
        1.0, ge=0, description="Weight of an item's category, tags and price band next to its id (0: ids only)."
    )
    sample_weight_power: float = Field(
        0.0, ge=0, le=1, description="Train on decayed weight ** power: 0 counts every interaction once, 1 linearly."
    )


class EaseSettings(StrictSettings):
    """EASE (Steck 2019): a closed-form item-item model, the search's second family (ml.recommender.ease)."""

    family: Literal["ease"] = "ease"
    l2: float = Field(200.0, gt=0, description="L2 penalty of the item-item weights (lambda in the paper).")
    view_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of an item viewed or carted and not bought in a customer's row (0: purchases only).",
    )
    max_items: int = Field(
        10_000, gt=0, description="The most bought items it models (its cost grows with the cube of this number)."
    )


ModelSettings = LightFMSettings | EaseSettings


class WarmStartConfig(StrictSettings):
    """Nights between searches continue the last version's LightFM fits instead of refitting from scratch."""

    enabled: bool = Field(
        True, description="Continue the last version's fits on nights between searches (false: refit from scratch)."
    )
    epochs: int = Field(5, gt=0, description="Epochs of the continuation.")
    recent_days: int = Field(
        90,
        gt=0,
        description="The continuation trains on the customer-item pairs with an interaction in this many days before"
        " the fit's end (weights as a full fit gives them): its cost follows these days, not the history.",
    )
    max_ndcg_loss: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="Refit from scratch when the continued evaluation fit serves this share (relative) below the"
        " fit it continued, both judged on tonight's holdout.",
    )


class RecommenderConfig(StrictSettings):
    """How interactions are weighted, the hybrid model trained and evaluated, and customers scored."""

    k: int = Field(10, gt=0, description="Recommendations per customer.")
    holdout: Literal["auto", "recent_days", "last_purchases"] = Field(
        "auto",
        description="Evaluation split: the purchases of the last holdout_days (recent_days), each customer's"
        " latest holdout_share of purchases (last_purchases), or auto: recent_days when it holds"
        " min_holdout_customers buyers.",
    )
    holdout_days: int = Field(14, gt=0, description="Evaluation window: the last days before the end of ds.")
    holdout_share: float = Field(
        0.2, gt=0, lt=1, description="last_purchases: the share of each customer's purchases held out (at least one)."
    )
    min_holdout_customers: int = Field(
        50, ge=1, description="auto: fewer buyers in the recent window than this, and last_purchases is used."
    )
    half_life_days: float = Field(30, gt=0, description="An interaction counts half as much after this many days.")
    interaction_weights: dict[str, float] = Field(
        {"purchase": 3.0, "add_to_cart": 1.0, "product_view": 0.25},
        description="Weight of one interaction of each kind (a purchase counts per unit).",
    )
    user_features: list[str] = Field(
        ["country", "age_band", "gender", "device_type", "acquisition_channel"],
        description="customer_360 columns used as demographic features (behavioral ones are derived).",
    )
    model: LightFMSettings = LightFMSettings()
    search: list[dict[str, Any]] = Field(
        [{}, {"no_components": 16}, {"user_feature_weight": 0.3}, {"family": "ease"}],
        description="Overrides of `model` tried in the hyperparameter search ({} = the settings as they are);"
        " an entry with `family: ease` is EASE settings instead.",
    )
    search_every_days: int = Field(
        7,
        ge=1,
        description="The search runs when the settings it chose are this many days old (weekly by default), on a"
        " first night, when the search list changed, when the last night's version lost the gate, or when"
        " monitoring saw dataset drift in the recommendations; other nights refit the chosen settings (1: every"
        " night).",
    )
    search_max_customers: int = Field(
        200_000,
        gt=0,
        description="The search fits and validates on a stable sample of at most this many customers (by a hash of"
        " the id), with all their interactions: it chooses settings, and its fits cost what their interactions"
        " cost; the evaluation and scoring fits use every customer.",
    )
    warm_start: WarmStartConfig = WarmStartConfig()
    eval_every_epochs: int = Field(5, gt=0, description="Early stopping: validation NDCG every this many epochs.")
    patience: int = Field(2, ge=1, description="Early stopping: stop after this many evaluations without gain.")
    num_threads: int = Field(1, gt=0, description="LightFM threads; above 1 training is no longer reproducible.")
    parallel_fits: int = Field(
        2,
        gt=0,
        description="LightFM fits run side by side, one thread each (the search settings, then the evaluation and"
        " scoring fits): as reproducible as one at a time, and about that many times faster on as many cores.",
    )
    cold_start_max_items: int = Field(
        2, ge=0, description="Customers with at most this many items in their history are reported as cold start."
    )
    model_min_items: int = Field(
        1, ge=0, description="Customers with fewer items in their history get the popularity fallback (0: none)."
    )
    exclude_purchased: bool = Field(True, description="Never recommend an item the customer already bought.")
    exclude_interacted: bool | Literal["auto"] = Field(
        "auto",
        description="Also never recommend an item the customer viewed or carted: true, false, or auto (whichever"
        " serves better on the validation window; items consumed once, like films, favour true).",
    )
    fallback_segment: str = Field(
        "country", description="customer_360 column whose most popular items cold customers get first."
    )
    scoring_batch_size: int = Field(SCORING_BATCH_SIZE, gt=0, description="Customers scored per matrix product.")
    champion: ChampionGateConfig = ChampionGateConfig(metric="ndcg_at_10", margin=0.002)

    @model_validator(mode="after")
    def _known_kinds(self) -> RecommenderConfig:
        unknown = set(self.interaction_weights) - set(INTERACTION_KINDS)
        if unknown:
            raise ValueError(f"unknown interaction kinds {sorted(unknown)}; known: {', '.join(INTERACTION_KINDS)}")
        if any(weight < 0 for weight in self.interaction_weights.values()):
            raise ValueError("interaction weights must be 0 or more")
        for position, overrides in enumerate(self.search):
            try:
                self.settings_of(overrides)
            except ValidationError as error:
                problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors())
                raise ValueError(f"search[{position}] {overrides}: {problems}") from None
        return self

    def settings_of(self, overrides: dict[str, Any]) -> ModelSettings:
        """One search entry: EASE settings when it names `family: ease`, else overrides of `model`."""
        if overrides.get("family") == "ease":
            return EaseSettings.model_validate(overrides)
        return LightFMSettings.model_validate(self.model.model_dump() | overrides)

    def search_settings(self) -> list[ModelSettings]:
        """The settings the search tries, each validated."""
        return [self.settings_of(overrides) for overrides in self.search]

    def search_fingerprint(self) -> str:
        """What the search's result depends on besides the data: a choice made under another is stale."""
        searched = {
            "settings": [settings.model_dump() for settings in self.search_settings()],
            "exclude_interacted": self.exclude_interacted,
            "eval_every_epochs": self.eval_every_epochs,
            "patience": self.patience,
            "half_life_days": self.half_life_days,
            "interaction_weights": self.interaction_weights,
            "user_features": self.user_features,
            "search_max_customers": self.search_max_customers,
        }
        return hashlib.sha256(json.dumps(searched, sort_keys=True).encode()).hexdigest()[:16]
