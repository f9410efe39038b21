"""The recommender's building blocks on hand-built data: features, batched top K, fallbacks, the gate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.errors import ConfigError
from ml.mlops.registry import CHALLENGER, CHAMPION, ChampionCheck, gate, serving_for
from ml.mlops.settings import ChampionGateConfig
from ml.orchestration.config import load_config
from ml.recommender.data import RecommenderInputs
from ml.recommender.ease import fit_ease
from ml.recommender.features import FeatureEncoder, activity_band, item_feature_pairs, price_band_edges
from ml.recommender.model import TrainingData, continue_fit, fit
from ml.recommender.ranking import MISSING, fill_from, top_k_scores
from ml.recommender.serving import MODEL, POPULAR_IN_SEGMENT, POPULAR_OVERALL, Audience, serve
from ml.recommender.settings import EaseSettings, LightFMSettings
from ml.recommender.training import last_purchases_holdout, side_by_side

ITEMS = pd.DataFrame(
    {
        "item_id": ["I1", "I2", "I3", "I4"],
        "category": ["toys", "toys", "books", None],
        "price": [5.0, 50.0, 500.0, None],
        "tags": ["kids|gift", None, "novel", ""],
        "is_active": [True, True, True, False],
    }
)


def test_item_features_are_category_each_tag_and_price_band():
    pairs = item_feature_pairs(ITEMS, price_band_edges(ITEMS["price"]))
    by_item = pairs.groupby("entity_id")["feature"].apply(sorted).to_dict()
    assert by_item["I1"] == ["category=toys", "price_band=0", "tag=gift", "tag=kids"]
    assert by_item["I3"] == ["category=books", "price_band=4", "tag=novel"]
    assert "I4" not in by_item  # nothing known: only its identity will describe it


def test_activity_bands_cover_every_count():
    assert activity_band(pd.Series([0, 1, 2, 3, 9, 10, 29, 30, 500])).tolist() == [
        "none",
        "1-2",
        "1-2",
        "3-9",
        "3-9",
        "10-29",
        "10-29",
        "30+",
        "30+",
    ]


def test_encoder_rows_are_identity_plus_weighted_features_normalized():
    pairs = pd.DataFrame({"entity_id": ["a", "a", "new"], "feature": ["country=FR", "age=30-39", "country=FR"]})
    encoder = FeatureEncoder.fit(["a", "b"], pairs, feature_weight=0.5)
    matrix = encoder.transform(["a", "b", "new", "stranger"], pairs).toarray()
    assert encoder.width == 4  # a, b, then age=30-39, country=FR
    np.testing.assert_allclose(matrix[0], [0.5, 0, 0.25, 0.25])  # 1 + 0.5 + 0.5, normalized
    np.testing.assert_allclose(matrix[1], [0, 1, 0, 0])
    np.testing.assert_allclose(matrix[2], [0, 0, 0, 1])  # unseen customer: features only
    np.testing.assert_allclose(matrix[3], [0, 0, 0, 0])  # nothing known: scores are item biases only


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n_users=st.integers(1, 9),
    n_items=st.integers(1, 700),  # up to 11 blocks of 64: both the direct and the two-stage selection
    k=st.integers(1, 6),
    batch_size=st.integers(1, 4),
)
def test_batched_top_k_equals_a_full_sort_with_masks(data, n_users, n_items, k, batch_size):
    floats = st.floats(-3, 3, allow_nan=False, width=32)
    users = data.draw(arrays(np.float32, (n_users, 3), elements=floats))
    items = data.draw(arrays(np.float32, (n_items, 3), elements=floats))
    biases = data.draw(arrays(np.float32, n_items, elements=floats))
    exclude = data.draw(arrays(bool, (n_users, n_items)))
    eligible = data.draw(arrays(bool, n_items))
    top, scores = top_k_scores(users, items, biases, k, sp.csr_matrix(exclude), eligible, batch_size)
    full = users @ items.T + biases
    for row in range(n_users):
        allowed = np.flatnonzero(eligible & ~exclude[row])
        expected = np.sort(full[row, allowed])[::-1][:k]
        found = top[row][top[row] != MISSING]
        assert len(found) == min(k, len(allowed))
        assert set(found) <= set(allowed)
        np.testing.assert_allclose(scores[row, : len(found)], expected, rtol=1e-5, atol=1e-5)
        assert (top[row, len(found) :] == MISSING).all()


def test_fill_from_keeps_the_first_list_and_skips_duplicates():
    primary = np.array([[3, 1, MISSING, MISSING], [MISSING] * 4])
    secondary = np.array([[1, 5, 3, 7, 8], [2, 4, MISSING, MISSING, MISSING]])
    items, source = fill_from(primary, secondary)
    assert items.tolist() == [[3, 1, 5, 7], [2, 4, MISSING, MISSING]]
    assert source.tolist() == [[0, 0, 1, 1], [1, 1, -1, -1]]


def _tiny_training() -> TrainingData:
    weights = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "b", "c"], "item_id": ["I1", "I2", "I2", "I3", "I1"], "weight": 1.0}
    )
    user_pairs = pd.DataFrame({"entity_id": ["a", "b", "c", "d"], "feature": ["country=FR"] * 4})
    item_ids = pd.Index(ITEMS["item_id"])
    edges = price_band_edges(ITEMS["price"])
    data = TrainingData(weights, user_pairs, item_ids, item_feature_pairs(ITEMS, edges), edges, dt.datetime(2026, 1, 1))
    return data


def test_serve_gives_k_items_from_model_then_segment_then_overall():
    data = _tiny_training()
    recommender = fit(data, LightFMSettings(no_components=4, max_epochs=3))
    customers = pd.Index(["a", "d"])  # a has history, d has none
    exclude = sp.csr_matrix(np.array([[True, False, False, False], [False, False, False, False]]))
    history = sp.csr_matrix(np.array([[1.0, 1, 0, 0], [0, 2, 1, 0], [1, 0, 0, 0]]))  # a, b, c
    audience = Audience(customers, data.user_pairs, np.array(["FR", "DE"], dtype=object), np.array([2, 0]), exclude)
    eligible = ITEMS["is_active"].to_numpy()
    served = serve(
        recommender,
        audience,
        data.item_ids,
        data.item_pairs,
        history,
        np.array(["FR", "DE", "FR"], dtype=object),
        eligible,
        k=3,
        model_min_items=1,
    )
    # a: the model ranks the 2 eligible items not bought (I4 is inactive, I1 bought); one slot stays empty.
    assert set(served.items[0][:2]) == {1, 2} and served.items[0][2] == MISSING
    assert served.strategy[0].tolist() == [MODEL, MODEL, ""]
    # d: segment DE is b's (I2 then I3), then overall popularity fills I1.
    assert served.items[1].tolist() == [1, 2, 0]
    assert served.strategy[1].tolist() == [POPULAR_IN_SEGMENT, POPULAR_IN_SEGMENT, POPULAR_OVERALL]
    np.testing.assert_allclose(served.scores[1], [2 / 3, 1 / 3, 2 / 6], rtol=1e-6)


def _next_day(data: TrainingData) -> TrainingData:
    """The day after _tiny_training: customer a erased, e new, b's new purchase of I4, feature spain new."""
    weights = pd.concat(
        [
            data.weights[data.weights["customer_id"] != "a"],
            pd.DataFrame({"customer_id": ["e", "b"], "item_id": ["I3", "I4"], "weight": 1.0}),
        ],
        ignore_index=True,
    )
    user_pairs = pd.DataFrame({"entity_id": ["b", "c", "d", "e"], "feature": ["country=FR"] * 3 + ["country=ES"]})
    return dataclasses.replace(
        data, weights=weights, user_pairs=user_pairs, trained_through=data.trained_through + dt.timedelta(days=1)
    )


def test_a_warm_start_keeps_what_it_learned_adds_the_new_and_drops_the_erased():
    settings = LightFMSettings(no_components=4, max_epochs=3, user_feature_weight=0.5)
    yesterday = _tiny_training()
    previous = fit(yesterday, settings)
    today = _next_day(yesterday)
    nothing_recent = pd.DataFrame({"customer_id": [], "item_id": []})
    relaid = continue_fit(previous, today, 2, today.trained_through, nothing_recent)

    old_users, new_users = previous.users, relaid.users
    assert list(new_users.ids) == ["b", "c", "e"] and list(new_users.vocabulary) == ["country=ES", "country=FR"]
    # Nothing recent to train on: a known column holds exactly its old state, adagrad accumulators too.
    for name in ("user_embeddings", "user_embedding_gradients", "user_biases"):
        old_state, new_state = getattr(previous.model, name), getattr(relaid.model, name)
        for key in ("b", "c"):
            np.testing.assert_array_equal(new_state[new_users.ids.get_loc(key)], old_state[old_users.ids.get_loc(key)])
        np.testing.assert_array_equal(
            new_state[len(new_users.ids) + 1],
            old_state[len(old_users.ids) + old_users.vocabulary.get_loc("country=FR")],
        )
    # New columns start as LightFM starts them; the erased customer's row is gone.
    fresh = [new_users.ids.get_loc("e"), len(new_users.ids)]
    assert np.all(relaid.model.user_embedding_gradients[fresh] == 1.0) and np.all(relaid.model.user_biases[fresh] == 0)
    assert np.all(np.abs(relaid.model.user_embeddings[fresh]) <= 0.5 / settings.no_components)
    assert relaid.model.user_embeddings.shape == (new_users.width, 4) and "a" not in set(new_users.ids)
    np.testing.assert_array_equal(relaid.model.item_embeddings, previous.model.item_embeddings)  # same catalog
    assert previous.model.user_embeddings.shape == (old_users.width, 4)  # the previous fit is left as it was
    assert relaid.warm_started_from == yesterday.trained_through and relaid.epochs == previous.epochs + 2


def test_a_warm_start_trains_only_the_recent_pairs_and_is_reproducible():
    settings = LightFMSettings(no_components=4, max_epochs=3)
    yesterday = _tiny_training()
    previous = fit(yesterday, settings)
    today = _next_day(yesterday)
    recent = pd.DataFrame({"customer_id": ["e", "b"], "item_id": ["I3", "I4"]})
    once, twice = (continue_fit(previous, today, 3, today.trained_through, recent) for _ in range(2))
    np.testing.assert_array_equal(once.model.user_embeddings, twice.model.user_embeddings)
    # c had nothing recent: its own row moved only through nothing (it is no negative in WARP's user
    # updates), while b's and e's did.
    row = {key: once.users.ids.get_loc(key) for key in ("b", "c", "e")}
    old_row = {key: previous.users.ids.get_loc(key) for key in ("b", "c")}
    np.testing.assert_array_equal(once.model.user_embeddings[row["c"]], previous.model.user_embeddings[old_row["c"]])
    assert not np.array_equal(once.model.user_embeddings[row["b"]], previous.model.user_embeddings[old_row["b"]])
    with pytest.raises(ValueError, match="cannot continue a fit trained through"):
        continue_fit(once, yesterday, 1, yesterday.trained_through, recent)


def test_fits_side_by_side_equal_fits_one_at_a_time():
    # Big enough that the threads overlap: three fits on 2 workers, the search's shape.
    rng = np.random.default_rng(7)
    item_ids = pd.Index([f"I{n}" for n in range(200)])
    weights = pd.DataFrame(
        {
            "customer_id": [f"c{n}" for n in rng.integers(0, 3000, 30_000)],
            "item_id": item_ids[rng.integers(0, 200, 30_000)],
            "weight": 1.0,
        }
    ).drop_duplicates(["customer_id", "item_id"])
    user_pairs = pd.DataFrame({"entity_id": weights["customer_id"].unique(), "feature": "country=FR"})
    item_pairs = pd.DataFrame({"entity_id": item_ids, "feature": [f"category={n % 5}" for n in range(200)]})
    data = TrainingData(weights, user_pairs, item_ids, item_pairs, np.array([]), dt.datetime(2026, 1, 1))
    fits = [
        functools.partial(fit, data, LightFMSettings(no_components=components, max_epochs=15))
        for components in (8, 16, 8)
    ]
    together = side_by_side(fits, workers=2)
    alone = side_by_side(fits, workers=1)
    for (parallel, seconds), (serial, _) in zip(together, alone, strict=True):
        assert seconds > 0 and parallel.epochs == serial.epochs == 15
        np.testing.assert_array_equal(parallel.model.item_embeddings, serial.model.item_embeddings)
        np.testing.assert_array_equal(parallel.model.user_embeddings, serial.model.user_embeddings)
    assert together[0][0].model.no_components == 8 and together[1][0].model.no_components == 16


def test_a_bad_search_override_names_its_position_and_key(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("recommender:\n  search:\n    - {}\n    - {no_componentz: 8}\n")
    with pytest.raises(ConfigError, match=r"search\[1\].*no_componentz"):
        load_config(path)


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty tracking store and a way to register a trivial version of model `gated`, trained for a ds.
    MLflow exports the tracking URI to the environment: monkeypatch takes it back after the test, so
    later tests in this process read their own data directory's store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))  # experiments the code under test creates go here
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("gate", artifact_location=(tmp_path / "artifacts").as_uri())
    client = MlflowClient()

    def register(ds: str = "2026-10-31"):
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=_Constant(), registered_model_name="gated", pip_requirements=[]
            )
        client.set_model_version_tag("gated", info.registered_model_version, "ds", ds)
        return client.get_model_version("gated", info.registered_model_version)

    return client, register


def test_the_gate_promotes_only_by_the_margin_and_writes_its_decision(registry):
    client, register = registry
    config = ChampionGateConfig(metric="ndcg_at_10", margin=0.01)
    champion_on_this_holdout = {"1": 0.20, "3": 0.215}
    evaluate = lambda champion: ChampionCheck(champion_on_this_holdout[str(champion.version)])  # noqa: E731
    popularity = ("popularity", 0.10)
    first = gate(client, "gated", register(), 0.20, popularity, evaluate, config)
    assert first.promoted and first.reason.startswith("no champion yet") and first.serving_version == "1"
    second = gate(client, "gated", register(), 0.205, popularity, evaluate, config)  # better, but not by the margin
    assert not second.promoted and second.champion_value == 0.20 and second.serving_version == "1"
    assert str(client.get_model_version_by_alias("gated", CHALLENGER).version) == "2"
    third = gate(client, "gated", register(), 0.21, popularity, evaluate, config)
    assert third.promoted and str(client.get_model_version_by_alias("gated", CHAMPION).version) == "3"
    tags = client.get_model_version("gated", "2").tags
    assert tags["gate_promoted"] == "False" and tags["gate_champion_value"] == "0.2"
    assert tags["gate_challenger_value"] == "0.205" and "margin 0.01" in tags["gate_reason"]
    assert tags["gate_baseline"] == "popularity" and tags["gate_baseline_value"] == "0.1"
    run_tags = client.get_run(client.get_model_version("gated", "2").run_id).data.tags
    assert run_tags["gate_promoted"] == "False" and run_tags["gate_champion_version"] == "1"
    assert run_tags["gate_serves"] == "model" and run_tags["gate_serving_version"] == "1"


def test_a_model_that_loses_to_its_baseline_never_serves(registry):
    """A deliberately weak first version is no champion; the baseline serves, and the summary says why."""
    client, register = registry
    config = ChampionGateConfig(metric="ndcg_at_10", margin=0.002)
    never_called = lambda champion: pytest.fail("there is no champion to evaluate")  # noqa: E731
    weak = gate(client, "gated", register(), 0.156, ("popularity", 0.191), never_called, config)
    assert not weak.promoted and weak.serves == "baseline" and weak.serving_version is None
    assert "0.1560 vs popularity 0.1910" in weak.reason and "the popularity baseline serves" in weak.summary
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("gated", CHAMPION)
    serving = serving_for(client, "gated", dt.date(2026, 10, 31))
    assert str(serving.version.version) == "1" and not serving.serves_model
    # Beating the baseline by less than the margin is losing too.
    close = gate(client, "gated", register(), 0.192, ("popularity", 0.191), never_called, config)
    assert not close.promoted and not serving_for(client, "gated", dt.date(2026, 10, 31)).serves_model


def test_a_champion_that_falls_behind_the_baseline_loses_its_alias(registry):
    client, register = registry
    config = ChampionGateConfig(metric="roc_auc", margin=0.002)
    first = gate(client, "gated", register("2026-10-30"), 0.80, ("rfm_heuristic", 0.70), None, config)
    assert first.promoted
    # The next night the data moved: the champion scores 0.71 there, the heuristic 0.75, the new version 0.74.
    second = gate(client, "gated", register(), 0.74, ("rfm_heuristic", 0.75), lambda c: ChampionCheck(0.71), config)
    assert not second.promoted and second.serves == "baseline" and "no longer beats the baseline" in second.reason
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("gated", CHAMPION)
    assert client.get_model_version("gated", "1").tags["gate_demoted_by"] == "2"
    assert not serving_for(client, "gated", dt.date(2026, 10, 31)).serves_model
    # A rerun of the first night still gets the version the gate chose for it then.
    earlier = serving_for(client, "gated", dt.date(2026, 10, 30))
    assert str(earlier.version.version) == "1" and earlier.serves_model
    # A new version that beats the heuristic again becomes champion (there is no champion left to beat).
    third = gate(client, "gated", register(), 0.78, ("rfm_heuristic", 0.75), None, config)
    assert third.promoted and str(serving_for(client, "gated", dt.date(2026, 10, 31)).version.version) == "3"


def test_ease_recommends_what_buyers_of_the_same_items_bought_and_nothing_for_strangers():
    # I1 and I2 are bought together by three customers; I3 alone by two others. Customer a bought I1.
    purchases = pd.DataFrame(
        {
            "customer_id": ["x", "x", "y", "y", "z", "z", "v", "w", "a"],
            "item_id": ["I1", "I2", "I1", "I2", "I1", "I2", "I3", "I3", "I1"],
        }
    )
    data = TrainingData(
        purchases.assign(weight=1.0),
        pd.DataFrame({"entity_id": [], "feature": []}),
        pd.Index(ITEMS["item_id"]),
        pd.DataFrame({"entity_id": [], "feature": []}),
        np.array([]),
        dt.datetime(2026, 1, 1),
        purchases=purchases,
    )
    recommender = fit_ease(data, EaseSettings(l2=1.0))
    exclude = sp.csr_matrix(np.array([[True, False, False, False], [False] * 4]))
    top, scores = recommender.recommend(pd.Index(["a", "stranger"]), data.user_pairs, data.item_ids, None, 2, exclude)
    assert data.item_ids[top[0, 0]] == "I2" and scores[0, 0] > 0  # bought with I1, never I3 first
    assert (top[1] == MISSING).all() and np.isnan(scores[1]).all()  # no row: the fallbacks serve
    # Inactive items are never recommended; an item the model never saw bought scores nothing.
    eligible = np.array([True, False, True, True])
    top, _ = recommender.recommend(pd.Index(["a"]), data.user_pairs, data.item_ids, None, 3, exclude, eligible)
    assert "I2" not in set(data.item_ids[top[0][top[0] != MISSING]])
    assert "I4" not in set(data.item_ids[top[0][top[0] != MISSING]])


def test_last_purchases_holdout_keeps_each_customers_latest_basket_out_of_the_view():
    t = pd.Timestamp("2026-10-01")
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c", "c"],
            "item_id": ["I1", "I2", "I3", "I4", "I1", "I2", "I3"],
            "occurred_at": [t, t + pd.Timedelta(days=5), t + pd.Timedelta(days=5), t + pd.Timedelta(days=6), t, t, t],
            "kind": ["purchase", "purchase", "purchase", "product_view", "purchase", "purchase", "purchase"],
            "quantity": 1.0,
        }
    )
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "country": "FR"})
    items = ITEMS.assign(is_active=True)
    inputs = RecommenderInputs(dt.date(2026, 10, 31), interactions, customers, items)
    config = load_config().recommender.model_copy(update={"user_features": []})
    holdout = last_purchases_holdout(inputs, dt.datetime(2026, 11, 1), config)
    # a: 3 purchases, the latest 20% (at least one) is the basket of day 5 (both items); b has one
    # purchase only and keeps it; c's two purchases share a moment: the whole basket is held out.
    truth = {
        (customer, item)
        for row, customer in enumerate(holdout.customer_ids)
        for item in inputs.item_ids[holdout.truth[row].indices]
    }
    assert truth == {("a", "I2"), ("a", "I3"), ("c", "I2"), ("c", "I3")}
    known = holdout.known.interactions
    assert set(zip(known["customer_id"], known["item_id"], strict=True)) == {("a", "I1"), ("b", "I1")}
    assert holdout.start == t.to_pydatetime() and holdout.kind == "last_purchases"


def test_the_search_sample_keeps_a_stable_set_of_customers_with_all_their_interactions():
    from ml.recommender.training import Holdout, search_sample

    customers = pd.DataFrame({"customer_id": [f"C{n:03d}" for n in range(40)], "country": "DE"})
    interactions = pd.DataFrame(
        {
            "customer_id": np.repeat(customers["customer_id"], 3).to_numpy(),
            "item_id": ["I1", "I2", "I3"] * 40,
            "occurred_at": pd.Timestamp("2026-10-01"),
            "kind": "purchase",
            "quantity": 1.0,
        }
    )
    known = RecommenderInputs(dt.date(2026, 10, 31), interactions, customers, ITEMS)
    test = Holdout(None, None, None, dt.datetime(2026, 10, 17), dt.datetime(2026, 10, 31), known=known)
    config = load_config().recommender.model_copy(update={"search_max_customers": 10})
    sampled = search_sample(test, config).known
    kept = set(sampled.customers["customer_id"])
    assert len(kept) == 10 and set(sampled.interactions["customer_id"]) == kept
    assert len(sampled.interactions) == 30  # every interaction of the kept customers
    assert sampled.items is ITEMS and search_sample(test, config).known.customers.equals(sampled.customers)
    # Ten new customers arrive: the sample changes only where a new one hashes lower.
    more = dataclasses.replace(
        known, customers=pd.concat([customers, customers.assign(customer_id=lambda f: f["customer_id"] + "X")[:10]])
    )
    kept_later = set(search_sample(dataclasses.replace(test, known=more), config).known.customers["customer_id"])
    assert {c for c in kept_later if not c.endswith("X")} <= kept
    # Under the cap, the split is left as it is.
    assert search_sample(test, load_config().recommender).known is known
