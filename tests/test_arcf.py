"""Tests of infae_kit.experiments.arcf: config checks, generation (shape, binary, determinism), the cache, and a planted
dataset on which AR-CF's users must follow the real item popularity and beat random rows for EASE."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import arcf
from infae_kit.experiments.arcf import ARCFConfig, arcf_cache_path, arcf_users_cached, fit_arcf, load_arcf_model, user_conditions
from infae_kit.models.baselines import EASE
from infae_kit.data import Interactions, build_rec_dataset, split_per_user
from infae_kit.errors import ParameterError
from infae_kit.evaluation.selection import tune_and_evaluate

# small networks for 300 users × 200 items; CFGAN's largest ZR weight (0.5): on this data it keeps the synthetic
# popularity closer to the real one than 0.1 (ML-1M's default)
PLANTED = ARCFConfig(condition_dim=8, noise_dim=8, generator_hidden=(64,), discriminator_hidden=(64,), epochs=80,
                     batch_size=32, zr_weight=0.5)
TINY = ARCFConfig(**dict(PLANTED.to_dict(), epochs=3))  # same shapes: the compiled epoch is reused


def planted_dataset(n_users: int = 300, n_items: int = 200, seed: int = 0):
    """Two user groups with disjoint item blocks (even users: the first half of the items, odd users: the second
    half), Zipf popularity inside each block, 6–15 interactions per user; the paper's split."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    weights = 1.0 / np.arange(1, half + 1) ** 1.0
    weights /= weights.sum()
    users, items = [], []
    for u in range(n_users):
        k = int(rng.integers(6, 16))
        chosen = rng.choice(half, size=k, replace=False, p=weights) + (u % 2) * half
        users.append(np.full(k, u))
        items.append(chosen)
    table = Interactions(user=np.concatenate(users), item=np.concatenate(items), source="planted two-block data")
    return build_rec_dataset(split_per_user(table, seed), name="planted", seed=seed)


@pytest.fixture(scope="module")
def data():
    return planted_dataset()


@pytest.fixture(scope="module")
def planted_model(data):
    return fit_arcf(data.train, PLANTED, seed=0, progress=False)


@pytest.fixture(scope="module")
def tiny_model(data):
    return fit_arcf(data.train, TINY, seed=1, progress=False)


# -- configuration -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, expected", [
    ("condition_dim", 0, "integer >= 1"),
    ("noise_dim", -1, "integer >= 1"),
    ("epochs", 1.5, "integer >= 1"),
    ("batch_size", True, "integer >= 1"),
    ("generator_hidden", (0,), "sequence of integers >= 1"),
    ("discriminator_hidden", "256", "sequence of integers >= 1"),
    ("g_learning_rate", 0.0, "> 0"),
    ("d_learning_rate", math.nan, "> 0"),
    ("beta1", 1.0, "[0, 1)"),
    ("zr_ratio", 1.5, "[0, 1]"),
    ("zr_weight", -0.1, ">= 0"),
    ("binarize", "top", "('topk', 'bernoulli')"),
])
def test_config_rejects_bad_values_naming_the_field_and_the_valid_range(field, value, expected):
    with pytest.raises(ParameterError) as err:
        ARCFConfig(**{field: value})
    assert f"ARCFConfig.{field}" in str(err.value) and expected in str(err.value)


def test_config_round_trips_and_normalises():
    config = ARCFConfig(generator_hidden=[32, 16], zr_ratio=1)
    assert config.generator_hidden == (32, 16) and isinstance(config.zr_ratio, float)
    assert ARCFConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ParameterError, match="unknown ARCFConfig fields"):
        ARCFConfig.from_dict({"epochs": 2, "epoch": 3})


def test_condition_dim_above_the_matrix_rank_bound_is_an_error(data):
    with pytest.raises(ParameterError, match="condition_dim"):
        fit_arcf(data.train, ARCFConfig(condition_dim=201), progress=False)


def test_user_conditions_are_deterministic_and_span_the_top_singular_subspace(data):
    X = data.train
    c1, c2 = user_conditions(X, 6, seed=3), user_conditions(X, 6, seed=3)
    np.testing.assert_array_equal(c1, c2)
    U, _, _ = np.linalg.svd(X.toarray(), full_matrices=False)
    Q, _ = np.linalg.qr(c1.astype(np.float64))
    # principal angles to the exact top-6 left singular subspace: cosines close to 1
    assert np.linalg.svd(U[:, :6].T @ Q, compute_uv=False).min() > 0.95


# -- generation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10", None])
def test_n_users_must_be_a_positive_integer(tiny_model, data, tmp_path, bad):
    with pytest.raises(ParameterError, match="n_users must be an integer >= 1"):
        tiny_model.generate(bad, seed=0)
    with pytest.raises(ParameterError, match="n_users must be an integer >= 1"):
        arcf_users_cached(data, bad, TINY, tmp_path, seed=0, progress=False)


@pytest.mark.parametrize("binarize", ["topk", "bernoulli"])
def test_generate_is_binary_of_the_right_shape_and_deterministic_per_seed(tiny_model, data, binarize):
    model = dataclasses.replace(tiny_model, config=dataclasses.replace(TINY, binarize=binarize))
    users = model.generate(50, seed=7)
    assert sp.isspmatrix_csr(users) and users.shape == (50, data.n_items) and users.dtype == np.float32
    assert np.all(users.data == 1.0) and users.has_sorted_indices
    assert np.all(np.diff(users.indptr) >= 1)  # no empty synthetic user
    assert (users != model.generate(50, seed=7)).nnz == 0
    assert (users != model.generate(50, seed=8)).nnz > 0
    if binarize == "topk":  # each virtual user has its seed user's train count
        _, seeds = model.probabilities(50, seed=7)
        np.testing.assert_array_equal(np.diff(users.indptr), model.counts[seeds])


def test_more_users_than_real_ones_repeat_the_seed_users(tiny_model, data):
    n = data.n_users + 17
    probs, seeds = tiny_model.probabilities(n, seed=0)
    assert probs.shape == (n, data.n_items) and np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_array_equal(np.sort(seeds[: data.n_users]), tiny_model.seed_users)
    assert tiny_model.generate(n, seed=0).shape == (n, data.n_items)


def test_fit_is_deterministic_per_seed(data, tiny_model):
    again = fit_arcf(data.train, TINY, seed=1, progress=False)
    for a, b in zip(again.generator, tiny_model.generator):
        np.testing.assert_array_equal(a["w"], b["w"])
    assert len(again.history["d_loss"]) == TINY.epochs and all(map(math.isfinite, again.history["g_loss"]))


# -- cache ---------------------------------------------------------------------------------------------------
def test_cache_round_trip_and_keys(data, tmp_path, monkeypatch):
    first, loaded = arcf_users_cached(data, 40, TINY, tmp_path, seed=2, progress=False)
    assert not loaded and first.shape == (40, data.n_items)
    path = arcf_cache_path(data, TINY, tmp_path, seed=2)
    card = json.loads((path / "card.json").read_text())
    assert card["generated"] == {"topk": [40]} and card["config"] == TINY.to_dict() and card["seed"] == 2
    assert card["dataset"]["train_sha256"] and card["dataset"]["name"] == "planted"

    def no_training(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(arcf, "fit_arcf", no_training)
    second, loaded = arcf_users_cached(data, 40, TINY, tmp_path, seed=2, progress=False)
    assert loaded and (second != first).nnz == 0 and second.dtype == np.float32
    # another N from the same trained generator: no training, the model's own generate()
    other, loaded = arcf_users_cached(data, 25, TINY, tmp_path, seed=2, progress=False)
    assert loaded and (other != load_arcf_model(path).generate(25, 2)).nnz == 0
    assert json.loads((path / "card.json").read_text())["generated"] == {"topk": [25, 40]}
    # the other binarisation: same trained generator (same directory), its own users file
    bernoulli = ARCFConfig(**dict(TINY.to_dict(), binarize="bernoulli"))
    assert arcf_cache_path(data, bernoulli, tmp_path, seed=2) == path
    sampled, loaded = arcf_users_cached(data, 40, bernoulli, tmp_path, seed=2, progress=False)
    assert loaded and (sampled != first).nnz > 0 and (path / "users-bernoulli-n40.npz").exists()
    assert json.loads((path / "card.json").read_text())["generated"] == {"topk": [25, 40], "bernoulli": [40]}
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary file behind

    keys = {path, arcf_cache_path(data, TINY, tmp_path, seed=3),
            arcf_cache_path(data, ARCFConfig(**dict(TINY.to_dict(), epochs=4)), tmp_path, seed=2),
            arcf_cache_path(planted_dataset(seed=1), TINY, tmp_path, seed=2)}
    assert len(keys) == 4  # seed, config and data each change the key


@pytest.mark.parametrize("damaged", ["card.json", "generator.npz", "users-topk-n40.npz"])
def test_a_damaged_cache_entry_is_set_aside_and_rebuilt(data, tmp_path, damaged):
    from infae_kit.caching import DamagedCacheWarning

    first, _ = arcf_users_cached(data, 40, TINY, tmp_path, seed=2, progress=False)
    path = arcf_cache_path(data, TINY, tmp_path, seed=2)
    (path / damaged).write_bytes((path / damaged).read_bytes()[:20])  # truncated
    # the card and the generator are read when users are generated: ask for another N
    n = 40 if damaged.startswith("users") else 25
    expected = first if n == 40 else fit_arcf(data.train, TINY, seed=2, progress=False).generate(25, 2)
    with pytest.warns(DamagedCacheWarning, match=damaged if damaged.startswith("users") else path.name):
        again, loaded = arcf_users_cached(data, n, TINY, tmp_path, seed=2, progress=False)
    assert (again != expected).nnz == 0  # trained (or generated) again: the same users
    assert loaded == damaged.startswith("users")  # a damaged users file costs a generation, not a training
    assert len(list(tmp_path.rglob("*.damaged-*"))) == 1


def test_saved_model_generates_what_the_trained_one_does(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "m")
    loaded = load_arcf_model(tmp_path / "m")
    assert loaded.config == tiny_model.config and loaded.seed == tiny_model.seed
    assert (loaded.generate(30, seed=4) != tiny_model.generate(30, seed=4)).nnz == 0


# -- planted structure ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("binarize, min_correlation", [("topk", 0.8), ("bernoulli", 0.85)])
def test_generated_users_follow_the_real_popularity_and_stay_in_one_block(data, planted_model, binarize,
                                                                           min_correlation):
    # Measured at seed 0: Pearson 0.87 (top-k) and 0.94 (Bernoulli), block purity 0.99; an undertrained
    # generator (3 epochs) gives 0.1–0.4 and 0.55–0.7, random rows ~0 and ~0.55 (training seeds 0–2: 0.77–0.92
    # and 0.86–0.97).
    model = dataclasses.replace(planted_model, config=dataclasses.replace(planted_model.config, binarize=binarize))
    users = model.generate(300, seed=0)
    real_pop = np.asarray(data.train.sum(axis=0)).ravel()
    fake_pop = np.asarray(users.sum(axis=0)).ravel()
    assert np.corrcoef(real_pop, fake_pop)[0, 1] > min_correlation
    half = data.n_items // 2
    in_first = np.asarray(users[:, :half].sum(axis=1)).ravel() / np.diff(users.indptr)
    purity = np.maximum(in_first, 1 - in_first)  # share of a user's items in its main block
    assert purity.mean() > 0.9


def test_ease_on_generated_users_beats_ease_on_random_rows(data, planted_model):
    n = 100
    users = planted_model.generate(n, seed=0)
    rng = np.random.default_rng(0)
    counts = np.diff(users.indptr)
    random_rows = sp.csr_matrix(
        (np.ones(counts.sum(), np.float32),
         np.concatenate([rng.choice(data.n_items, size=k, replace=False) for k in counts]),
         np.concatenate([[0], np.cumsum(counts)])), shape=users.shape)
    grid = (1.0, 10.0, 100.0)
    generated = tune_and_evaluate(EASE, grid, data, train=users).test_metrics
    baseline = tune_and_evaluate(EASE, grid, data, train=random_rows).test_metrics
    assert generated["HR@10"] > baseline["HR@10"] + 10.0, (generated, baseline)
    assert generated["NDCG@10"] > baseline["NDCG@10"] + 5.0, (generated, baseline)
