"""DISTILL-CF: the multi-step Gumbel sampler and its custom VJP, the loop, resume, the artifact, config checks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.baselines import EASE, PopRec
from infae_kit.data import load_dataset
from infae_kit.distill import (
    DistillConfig,
    DistillResult,
    distill,
    distill_objective,
    hard_gumbel_support,
    item_ids_hash,
    load_distilled,
    multi_step_gumbel,
    topk_binarize,
)
from infae_kit.errors import ParameterError
from infae_kit.evaluation import evaluate_model
from infae_kit.infinite_ae import InfiniteAE

FAST = dict(budget=20, gamma=8, steps=6, eval_steps=(3,), log_freq=6, patience=150)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_users=200, n_items=150, seed=1, zipf_a=0.5, affinity_scale=4.0)


@pytest.fixture(scope="module")
def fast_result(data):
    return distill(data, DistillConfig(**FAST), progress=False)


def _unrolled(logits, key, n, tau):
    keys = jax.random.split(key, n)
    total = sum(jax.nn.softmax((logits + jax.random.gumbel(k, logits.shape, logits.dtype)) / tau, axis=-1)
                for k in keys)
    return jnp.clip(total, -1.0, 1.0)


# -- sampler -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 10.0])
def test_custom_vjp_gradient_equals_autodiff(tau):
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 13)) * 2.0
    key = jax.random.PRNGKey(7)
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 13))
    f_custom = lambda x: jnp.sum(jnp.sin(multi_step_gumbel(x, key, 6, tau)) * w)
    f_plain = lambda x: jnp.sum(jnp.sin(_unrolled(x, key, 6, tau)) * w)
    np.testing.assert_allclose(multi_step_gumbel(logits, key, 6, tau), _unrolled(logits, key, 6, tau), rtol=1e-5)
    np.testing.assert_allclose(jax.grad(f_custom)(logits), jax.grad(f_plain)(logits), rtol=1e-5, atol=1e-7)
    # also under jit
    np.testing.assert_allclose(jax.jit(jax.grad(f_custom))(logits), jax.grad(f_plain)(logits), rtol=1e-5, atol=1e-7)


def test_sampler_range_determinism_and_density():
    logits = jnp.asarray(np.random.default_rng(0).random((6, 40)), jnp.float32)
    key = jax.random.PRNGKey(3)
    a = np.asarray(multi_step_gumbel(logits, key, 10, 0.3))
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, np.asarray(multi_step_gumbel(logits, key, 10, 0.3)))
    assert not np.array_equal(a, np.asarray(multi_step_gumbel(logits, jax.random.PRNGKey(4), 10, 0.3)))
    few = np.asarray(multi_step_gumbel(logits, key, 2, 0.3))
    many = np.asarray(multi_step_gumbel(logits, key, 50, 0.3))
    assert (many > 0.5).sum(axis=1).mean() > (few > 0.5).sum(axis=1).mean()
    assert many.sum() > few.sum()
    # hard limit: binary, at most γ items per row, denser with γ
    h2, h50 = (np.asarray(hard_gumbel_support(logits, key, g)) for g in (2, 50))
    assert set(np.unique(h50)) <= {0.0, 1.0}
    assert (h2.sum(axis=1) <= 2).all() and h50.sum() > h2.sum()


def test_sampler_rejects_bad_args():
    with pytest.raises(ParameterError, match="n_samples"):
        multi_step_gumbel(jnp.zeros((2, 3)), jax.random.PRNGKey(0), 0, 1.0)
    with pytest.raises(ParameterError, match="tau"):
        multi_step_gumbel(jnp.zeros((2, 3)), jax.random.PRNGKey(0), 2, 0.0)


def test_topk_binarize_keeps_row_mass():
    soft = np.array([[0.9, 0.5, 0.4, 0.1], [0.05, 0.1, 0.2, 0.0]], np.float32)
    out = topk_binarize(soft)
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [0, 0, 1, 0]])


# -- objective and loop --------------------------------------------------------------------------------------
def test_objective_finite_and_descends(data):
    x = jnp.asarray(data.train.toarray())
    prior = x[:20]
    f = lambda p: distill_objective(p, jax.random.PRNGKey(0), x, 1.0, gamma=8, tau=10.0, lambda2=1e-3,
                                    avg_interactions=data.train.nnz / data.n_users)
    for loss_kind in ("multinomial", "bce"):
        g = lambda p: distill_objective(p, jax.random.PRNGKey(0), x, 1.0, gamma=8, tau=10.0, lambda2=1e-3,
                                        avg_interactions=20.0, loss=loss_kind)
        val, grad = jax.value_and_grad(g)(prior)
        assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(grad)))
    loss0, grad = jax.value_and_grad(f)(prior)
    # a small step against the gradient (same key) lowers the loss
    assert float(f(prior - 0.5 * grad / jnp.linalg.norm(grad))) < float(loss0)


def test_distill_runs_and_records_history(data, fast_result):
    r = fast_result
    h = r.history
    assert len(h["loss"]) == 6 and np.all(np.isfinite(h["loss"]))
    assert [e["step"] for e in h["evaluations"]] == [0, 3, 6]
    assert all(e["lambda"] in DistillConfig().val_lambdas for e in h["evaluations"])
    assert h["best_step"] in (3, 6) and r.best_lambda == h["best_lambda"]
    assert r.best_support.shape == (20, data.n_items) and r.best_support.dtype == np.float32
    assert r.best_support.min() >= 0 and r.best_support.max() <= 1
    init = data.train[np.asarray(h["initial_users"])].toarray()
    assert not np.allclose(r.prior, init)  # the prior moved
    assert r.timings["s_per_step"] > 0


def test_loss_decreases_over_steps(data):
    cfg = DistillConfig(budget=20, gamma=8, steps=15, eval_steps=(), log_freq=15, lr=0.2)
    r = distill(data, cfg, progress=False)
    loss = np.asarray(r.history["loss"])
    assert loss[-5:].mean() < loss[:3].mean()


def test_binary_supports(data):
    for mode in ("topk", "hard"):
        r = distill(data, DistillConfig(**dict(FAST, steps=3, eval_steps=(), support=mode)), progress=False)
        assert set(np.unique(r.best_support.data)) == {1.0}
        assert r.data_card()["binary"]


def test_resume_equals_uninterrupted(data, tmp_path):
    cfg = DistillConfig(**dict(FAST, steps=7, checkpoint_every=2, batch_size=64))
    full = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "a")
    part = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "b", stop_at=5)
    assert part.history["steps_run"] == 5
    manifest = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert manifest["step"] == 5 and len(list((tmp_path / "b").glob("ckpt_*.npz"))) == 1
    resumed = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "b", resume=True)
    np.testing.assert_array_equal(resumed.prior, full.prior)
    assert resumed.history["loss"] == full.history["loss"]
    assert (resumed.best_support != full.best_support).nnz == 0 and resumed.best_lambda == full.best_lambda
    with pytest.raises(ParameterError, match="different config"):
        distill(data, DistillConfig(**dict(FAST, steps=8, checkpoint_every=2, batch_size=64)), progress=False,
                checkpoint_dir=tmp_path / "b")


# -- artifact ------------------------------------------------------------------------------------------------
def test_artifact_round_trip_and_models_train_on_it(data, fast_result, tmp_path):
    path = fast_result.save(tmp_path / "support")
    loaded = load_distilled(path)
    assert isinstance(loaded, DistillResult)
    assert (loaded.best_support != fast_result.best_support).nnz == 0
    assert loaded.best_lambda == fast_result.best_lambda and loaded.config == fast_result.config
    card = json.loads((path / "datacard.json").read_text())
    assert card["dataset"]["n_items"] == data.n_items
    assert card["dataset"]["item_ids_sha256"] == item_ids_hash(data.item_ids)
    assert card["budget"] == 20 and card["gamma"] == 8 and card["steps_run"] == 6
    assert "HR@100" in card["validation_metrics"] and 0 <= card["sparsity"]["density"] <= 1
    for model in (InfiniteAE(loaded.best_lambda), EASE(10.0)):
        model.fit(loaded.best_support)
        assert model.recommend(data.train[:3], k=5).shape == (3, 5)


def test_distilled_support_beats_poprec(data):
    cfg = DistillConfig(budget=40, gamma=20, steps=10, eval_steps=(5,), log_freq=10)
    r = distill(data, cfg, progress=False)
    hr = evaluate_model(InfiniteAE(r.best_lambda).fit(r.best_support), data, "test", n_negatives=0).metrics["HR@10"]
    pop = evaluate_model(PopRec().fit(data.train), data, "test", n_negatives=0).metrics["HR@10"]
    assert hr > pop + 5.0


# -- config --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [
    ("budget", 0), ("budget", 2.5), ("gamma", 0), ("tau", 0.0), ("tau", float("nan")), ("lambda2", -1.0),
    ("lr", 0.0), ("steps", 0), ("batch_size", 0), ("batch_size", -2), ("loss", "mse"), ("val_lambdas", ()),
    ("val_lambdas", (0.0, 1.0)), ("eval_steps", (0,)), ("log_freq", 0), ("patience", -1), ("seed", 1.5),
    ("checkpoint_every", -1), ("support", "round"), ("depth", 0), ("gamma", True),
])
def test_bad_config_raises(field, value):
    with pytest.raises(ParameterError, match=field):
        DistillConfig(**{field: value})


def test_bad_run_arguments(data):
    with pytest.raises(ParameterError, match="budget"):
        distill(data, DistillConfig(budget=10_000, steps=1), progress=False)
    with pytest.raises(ParameterError, match="checkpoint_dir"):
        distill(data, DistillConfig(budget=5, steps=1, checkpoint_every=1), progress=False)
    with pytest.raises(ParameterError, match="batch_size"):
        distill(data, DistillConfig(budget=5, steps=1, batch_size=10_000), progress=False)
