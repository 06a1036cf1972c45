"""DISTILL-CF: the multi-step Gumbel sampler and its custom VJP, the loop, resume, the artifact, config checks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from infae_kit.models.baselines import EASE, PopRec
from infae_kit.caching import DamagedCacheWarning
from infae_kit.data import load_dataset
from infae_kit.distill.sampler import noise_from_seed  # the hash noise of one sample, for the plain reference
from infae_kit.distill import (
    DistillConfig,
    DistillResult,
    distill,
    distill_objective,
    gumbel_noise,
    hard_gumbel_support,
    item_ids_hash,
    load_distilled,
    multi_step_gumbel,
    topk_binarize,
)
from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.models.infinite_ae import InfiniteAE
from shared_data import needs_data_file

FAST = dict(budget=20, gamma=8, steps=6, eval_steps=(3,), log_freq=6, patience=150)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_users=200, n_items=150, seed=1, zipf_a=0.5, affinity_scale=4.0)


@pytest.fixture(scope="module")
def fast_result(data):
    return distill(data, DistillConfig(**FAST), progress=False)


def _unrolled(logits, key, n, tau, noise):
    """The sampler written plainly (a Python sum of softmaxes, plain autodiff), with the same per-sample noise."""
    keys = jax.random.split(key, n)
    if noise == "threefry":  # independent of the kit's code: jax.random.gumbel on the split keys
        draws = [jax.random.gumbel(k, logits.shape, logits.dtype) for k in keys]
    else:
        draws = [noise_from_seed(jax.random.bits(k, (2,), jnp.uint32), logits.shape, logits.dtype, "hash")
                 for k in keys]
    total = sum(jax.nn.softmax((logits + g) / tau, axis=-1) for g in draws)
    return jnp.clip(total, -1.0, 1.0)


# -- sampler -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", ["hash", "threefry"])
@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0, 10.0])
def test_custom_vjp_gradient_equals_autodiff(tau, noise):
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 13)) * 2.0
    key = jax.random.PRNGKey(7)
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 13))
    f_custom = lambda x: jnp.sum(jnp.sin(multi_step_gumbel(x, key, 6, tau, noise)) * w)
    f_plain = lambda x: jnp.sum(jnp.sin(_unrolled(x, key, 6, tau, noise)) * w)
    np.testing.assert_allclose(multi_step_gumbel(logits, key, 6, tau, noise), _unrolled(logits, key, 6, tau, noise),
                               rtol=1e-5, atol=1e-7)
    want = jax.grad(f_plain)(logits)
    atol = 1e-5 * float(jnp.max(jnp.abs(want)))  # float32 sums of nearly cancelling terms (τ = 0.1)
    np.testing.assert_allclose(jax.grad(f_custom)(logits), want, rtol=1e-5, atol=atol)
    # also under jit
    np.testing.assert_allclose(jax.jit(jax.grad(f_custom))(logits), want, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("tau", [0.5, 10.0])
@pytest.mark.parametrize("kept", [0, 3, 6])
def test_kept_draws_give_the_same_sum_and_gradient(tau, kept):
    """Keeping m of the γ draws for the backward pass: S, Z bit-identical, the gradient to float32 rounding.

    (At this toy width XLA may fuse the re-drawn and the read-back backward differently, a last-bit difference;
    at the datasets' shapes the runs are identical bit for bit, see the real-data test below.)
    """
    from infae_kit.distill.sampler import gumbel_sum_backward, gumbel_sum_forward, gumbel_sum_forward_storing, \
        sample_seeds

    logits = jax.random.normal(jax.random.PRNGKey(0), (7, 19)) * 2.0
    seeds = sample_seeds(jax.random.PRNGKey(4), 6, "hash")
    g = jax.random.normal(jax.random.PRNGKey(1), logits.shape)
    fwd = jax.jit(lambda x, s: gumbel_sum_forward(x, s, tau, "hash"))
    storing = jax.jit(lambda x, s, b: gumbel_sum_forward_storing(x, s, b, tau, "hash"), donate_argnums=2)
    bwd = jax.jit(lambda x, s, t, z, c, b: gumbel_sum_backward(x, s, t, z, c, tau, "hash", b))
    total, norms = fwd(logits, seeds)
    total_k, norms_k, store = storing(logits, seeds, jnp.full((kept, *logits.shape), jnp.nan))
    np.testing.assert_array_equal(total_k, total)
    np.testing.assert_array_equal(norms_k, norms)
    assert store.shape == (kept, *logits.shape)
    for k in range(kept):  # each kept draw is its softmax numerators: e_k / Z_k is draw k's softmax
        want = jax.nn.softmax((logits + noise_from_seed(seeds[k], logits.shape, logits.dtype, "hash")) / tau)
        np.testing.assert_allclose(store[k] / norms[k][:, None], want, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(bwd(logits, seeds, total, norms, g, store if kept else None),
                               bwd(logits, seeds, total, norms, g, None), rtol=2e-6, atol=1e-9)


def test_draw_store_of_a_wrong_shape_and_bad_budgets_are_refused(monkeypatch):
    from infae_kit.distill.loop import SAMPLER_MEMORY_ENV, sampler_memory_mb
    from infae_kit.distill.sampler import gumbel_sum_forward_storing, sample_seeds, stored_draws

    logits, seeds = jnp.zeros((4, 5)), sample_seeds(jax.random.PRNGKey(0), 3, "hash")
    with pytest.raises(ParameterError, match=r"must be \(m, 4, 5\) float32 with m <= γ = 3"):
        gumbel_sum_forward_storing(logits, seeds, jnp.zeros((4, 4, 5)), 10.0, "hash")
    assert stored_draws(1000, 3, (4, 5)) == 3 and stored_draws(100, 3, (4, 5)) == 1 and stored_draws(0, 3, (4, 5)) == 0
    monkeypatch.delenv(SAMPLER_MEMORY_ENV, raising=False)
    assert sampler_memory_mb() == 1024 and sampler_memory_mb(0) == 0
    monkeypatch.setenv(SAMPLER_MEMORY_ENV, "256")
    assert sampler_memory_mb() == 256 and sampler_memory_mb(8) == 8
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv(SAMPLER_MEMORY_ENV, bad)
        with pytest.raises(ParameterError, match=r"\$INFAE_SAMPLER_MEMORY_MB must be a number of MiB >= 0"):
            sampler_memory_mb()
    with pytest.raises(ParameterError, match="sampler_memory_mb must be"):
        sampler_memory_mb(-5)


@pytest.mark.parametrize("tau", [1.0, 1.7, 5.0, 10.0, 50.0])
def test_frechet_power_equals_exp_of_log(tau):
    """E^(−1/τ) from exponent bits and the fitted polynomial, over every value −log u can take."""
    from infae_kit.distill.sampler import frechet_coefficients, frechet_power

    u = (np.arange(0, 2 ** 23, 5, dtype=np.float64) + 0.5) * 2.0 ** -23
    e = (-np.log(u)).astype(np.float32)
    want = e.astype(np.float64) ** (-1.0 / tau)
    got = np.asarray(jax.jit(lambda v: frechet_power(v, tau, frechet_coefficients(tau)))(jnp.asarray(e)), np.float64)
    assert np.max(np.abs(got - want) / want) < 4e-7
    assert frechet_coefficients(0.9) is None  # below τ = 1 the sampler keeps log and exp


@pytest.mark.parametrize("tau,gamma", [(1.0, 1), (5.0, 1), (10.0, 3)])
def test_fast_sampler_has_the_reference_distribution(tau, gamma):
    """Rows of one prior row repeated: each is an independent draw. Per entry, the Fréchet-form sampler's values
    and those of the plain softmax of jax.random.gumbel noise (the paper code's sampler) agree in mean and
    variance and pass a two-sample KS test."""
    from scipy import stats

    base = jnp.asarray([[2.0, 0.5, 0.0, -1.0, 3.0, 1.0]])
    n = 3000
    logits = jnp.tile(base, (n, 1))
    fast = np.asarray(multi_step_gumbel(logits, jax.random.PRNGKey(11), gamma, tau, "hash"))
    keys = jax.random.split(jax.random.PRNGKey(12), gamma)
    ref = sum(jax.nn.softmax((logits + jax.random.gumbel(k, logits.shape)) / tau, axis=-1) for k in keys)
    ref = np.asarray(jnp.clip(ref, -1.0, 1.0))
    for j in range(base.shape[1]):
        a, b = fast[:, j], ref[:, j]
        assert stats.ks_2samp(a, b).pvalue > 1e-3, f"item {j}"
        se = np.sqrt(a.var() / n + b.var() / n)
        assert abs(a.mean() - b.mean()) < 5 * se, f"item {j}"
        if tau >= 5.0:  # at τ = 1 the entries are heavy-tailed: their sample variance is too noisy to compare
            assert abs(a.std() / b.std() - 1) < 0.1, f"item {j}"


def test_fixed_softmax_shift_survives_extreme_logits():
    """Logits spread far apart (prior rows after many Adam steps) give the same sample as the exact softmax."""
    logits = jnp.asarray([[40.0, -40.0, 0.0, 3.0, -3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    key = jax.random.PRNGKey(0)
    for tau in (0.3, 1.0, 10.0):
        got = multi_step_gumbel(logits, key, 4, tau)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, _unrolled(logits, key, 4, tau, "hash"), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("noise", ["hash", "threefry"])
def test_gumbel_noise_distribution(noise):
    """Moments and KS distance to the standard Gumbel; no correlation between neighbours or between seeds."""
    from scipy import stats

    g = np.asarray(gumbel_noise(jax.random.PRNGKey(5), (400, 500), generator=noise), dtype=np.float64)
    assert abs(g.mean() - np.euler_gamma) < 0.01 and abs(g.var() - np.pi ** 2 / 6) < 0.03
    assert stats.kstest(g.ravel(), stats.gumbel_r.cdf).statistic < 0.003
    u = np.exp(-np.exp(-g))                       # back to uniforms
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.01     # along items
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.01           # along rows
    other = np.asarray(gumbel_noise(jax.random.PRNGKey(6), (400, 500), generator=noise))
    assert abs(np.corrcoef(g.ravel(), other.ravel())[0, 1]) < 0.01
    hist = np.histogram(u, bins=64, range=(0.0, 1.0))[0]
    assert stats.chisquare(hist).pvalue > 1e-4
    with pytest.raises(ParameterError, match="generator"):
        gumbel_noise(jax.random.PRNGKey(0), (2, 3), generator="mt19937")


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
@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
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
    t = r.timings  # the first step (compilation) is timed apart; s_per_step averages the 5 steps after it
    assert t["first_step"] > 0 and t["s_per_step"] == pytest.approx(t["steps"] / 5)
    assert t["total"] >= t["first_step"] + t["steps"] + t["validation"]


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_loss_decreases_over_steps(data):
    cfg = DistillConfig(budget=20, gamma=8, steps=15, eval_steps=(), log_freq=15, lr=0.2)
    r = distill(data, cfg, progress=False)
    loss = np.asarray(r.history["loss"])
    assert loss[-5:].mean() < loss[:3].mean()


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_binary_supports(data):
    for mode in ("topk", "hard"):
        r = distill(data, DistillConfig(**dict(FAST, steps=3, eval_steps=(), support=mode)), progress=False)
        assert set(np.unique(r.best_support.data)) == {1.0}
        assert r.data_card()["binary"]


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_resume_equals_uninterrupted(data, tmp_path):
    cfg = DistillConfig(**dict(FAST, steps=7, checkpoint_every=2, batch_size=64))
    full = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "a")
    part = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "b", stop_at=5)
    assert part.history["steps_run"] == 5
    manifest = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert manifest["step"] == 5 and len(list((tmp_path / "b").glob("ckpt_*.npz"))) == 2  # this and the previous
    resumed = distill(data, cfg, progress=False, checkpoint_dir=tmp_path / "b", resume=True)
    np.testing.assert_array_equal(resumed.prior, full.prior)
    assert resumed.history["loss"] == full.history["loss"]
    assert (resumed.best_support != full.best_support).nnz == 0 and resumed.best_lambda == full.best_lambda
    with pytest.raises(ParameterError, match="different config"):
        distill(data, DistillConfig(**dict(FAST, steps=7, checkpoint_every=2, batch_size=64, tau=0.5)),
                progress=False, checkpoint_dir=tmp_path / "b")


def test_accumulated_step_equals_the_mean_gradient(data):
    """A step over two batches is one Adam step on the mean of the batches' objective gradients (same key)."""

    from infae_kit.distill.loop import make_step

    x = data.train.toarray().astype(np.float32)
    xa, xb = jnp.asarray(x[:80]), jnp.asarray(x[80:170])
    cfg = DistillConfig(budget=20, gamma=8, tau=5.0, batch_size=80, accumulate=2, lr=0.05)
    avg = data.train.nnz / data.n_users
    optimizer, step = make_step(cfg, avg)
    prior = jnp.asarray(x[:20] + 0.1)
    key = jax.random.PRNGKey(3)
    _, opt_state, key_next, loss = step(prior, optimizer.init(prior), key, iter([xa, xb]), jnp.float32(1.0))
    sub = jax.random.split(key)[1]
    f = lambda p, xt: distill_objective(p, sub, xt, 1.0, gamma=8, tau=5.0, lambda2=cfg.lambda2,
                                        avg_interactions=avg)
    (la, ga), (lb, gb) = jax.value_and_grad(f)(prior, xa), jax.value_and_grad(f)(prior, xb)
    want = (ga + gb) / 2
    # Adam's first moment after one step is (1 − β₁) · gradient: the gradient the step applied
    got = opt_state[0].mu / 0.1
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(want))))
    assert float(loss) == pytest.approx((float(la) + float(lb)) / 2, rel=1e-5)
    np.testing.assert_array_equal(key_next, jax.random.split(key)[0])  # the key advances once per step


def test_runs_are_the_same_whatever_the_sampler_memory(data):
    """The draw store is a speed setting: none, some and all of the γ draws kept give the same run."""
    cfg = DistillConfig(**dict(FAST, steps=4, eval_steps=(2,), log_freq=4))
    per_draw_mb = cfg.budget * data.n_items * 4 / 2 ** 20
    runs = [distill(data, cfg, progress=False, sampler_memory=mb) for mb in (0, 3.5 * per_draw_mb, 1024)]
    for run in runs[1:]:
        np.testing.assert_allclose(run.prior, runs[0].prior, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run.history["loss"], runs[0].history["loss"], rtol=1e-6)


@pytest.mark.parametrize("dataset", [pytest.param("magazine", marks=needs_data_file("magazine/index.npz")),
                                     pytest.param("ml-1m", marks=needs_data_file("ml-1m/index.npz"))])
def test_kept_draws_leave_a_run_identical_bit_for_bit(dataset):
    """At a dataset's shape (the CI configuration's μ = 50, γ = 50) the steps are identical bit for bit whether
    the backward pass re-draws every sample or reads them all back."""
    from infae_kit.distill.loop import initial_prior, make_step

    train = load_dataset(dataset).train.astype(np.float32)
    cfg = DistillConfig(budget=50, gamma=50)
    x = jnp.asarray(train.toarray())
    priors = []
    for mb in (0, 1024):
        optimizer, step = make_step(cfg, train.nnz / train.shape[0], sampler_memory=mb)
        prior = jnp.asarray(initial_prior(train, cfg.budget, cfg.seed)[0])
        state, key = optimizer.init(prior), jax.random.PRNGKey(0)
        for _ in range(4):
            prior, state, key, _ = step(prior, state, key, [x], jnp.float32(1.0))
        priors.append(np.asarray(prior))
    np.testing.assert_array_equal(priors[1], priors[0])


def test_streamed_batches_and_sampled_validation_run(data):
    base = dict(FAST, steps=4, eval_steps=(2,), log_freq=4)
    one = distill(data, DistillConfig(**base, batch_size=32), progress=False)
    acc = distill(data, DistillConfig(**base, batch_size=32, accumulate=3), progress=False)
    assert np.all(np.isfinite(acc.history["loss"])) and acc.history["loss"] != one.history["loss"]
    sampled = distill(data, DistillConfig(**base, batch_size=32, val_users=60), progress=False)
    assert [e["step"] for e in sampled.history["evaluations"]] == [e["step"] for e in one.history["evaluations"]]
    assert sampled.history["evaluations"][0]["metrics"] != one.history["evaluations"][0]["metrics"]


def test_new_config_fields_leave_cache_keys_of_older_runs_unchanged():
    d = DistillConfig().to_dict()
    assert "accumulate" not in d and "val_users" not in d
    cfg = DistillConfig(batch_size=64, accumulate=4, val_users=1000)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["accumulate"] == 4


# -- artifact ------------------------------------------------------------------------------------------------
def test_artifact_round_trip_and_models_train_on_it(data, fast_result, tmp_path):
    measured = evaluate_model(InfiniteAE(fast_result.best_lambda).fit(fast_result.best_support), data, "test")
    result = DistillResult(fast_result.best_support, fast_result.best_lambda, fast_result.history,
                           fast_result.config, fast_result.timings, fast_result.dataset,
                           test_metrics=dict(measured.metrics))
    path = result.save(tmp_path / "support")
    loaded = load_distilled(path)
    assert loaded.test_metrics == pytest.approx(measured.metrics) and "NDCG@10" in loaded.test_metrics
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


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
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
    ("checkpoint_every", -1), ("support", "round"), ("depth", 0), ("gamma", True), ("accumulate", 0),
    ("accumulate", 2), ("val_users", 0),
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


# -- presets, cache, search ------------------------------------------------------------------------------------
def test_presets_and_overrides():
    from infae_kit.distill import CI_CONFIG, RECORDED_CONFIGS, distill_config_for

    rec = distill_config_for("ml-1m")
    assert {k: getattr(rec, k) for k in RECORDED_CONFIGS["ml-1m"]} == RECORDED_CONFIGS["ml-1m"]
    assert distill_config_for("no-such-data") == DistillConfig(log_freq=40)        # the paper code's defaults
    ci = distill_config_for("magazine", "ci", gamma=None, tau=0.5)
    assert (ci.budget, ci.gamma, ci.steps, ci.tau) == (CI_CONFIG["budget"], CI_CONFIG["gamma"], 30, 0.5)
    assert ci.log_freq == 10                                # short runs validate every steps // 3
    with pytest.raises(ParameterError, match="preset"):
        distill_config_for("magazine", "best")


def test_recorded_configs_are_the_searches_choices():
    """Each recorded configuration is the run its committed search record ranks first on validation NDCG@10."""
    import json

    from infae_kit.distill import RECORDED_CONFIGS
    from infae_kit.paths import repo_root

    searched = sorted((repo_root() / "figures").glob("03_distill_search-*.json"))
    assert {p.stem.removeprefix("03_distill_search-") for p in searched} == set(RECORDED_CONFIGS)
    for path in searched:
        rows = json.loads(path.read_text())["rows"]
        best = max(rows, key=lambda r: r["val"]["NDCG@10"])["config"]
        dataset = path.stem.removeprefix("03_distill_search-")
        assert {k: best[k] for k in RECORDED_CONFIGS[dataset]} == RECORDED_CONFIGS[dataset], dataset


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_distill_cached_reuses_and_keys_on_config_and_data(data, tmp_path):
    from infae_kit.distill import distill_cache_path, distill_cached

    config = DistillConfig(**FAST)
    first, cached = distill_cached(data, config, tmp_path, progress=False)
    assert not cached and (distill_cache_path(data, config, tmp_path) / "datacard.json").exists()
    again, cached = distill_cached(data, config, tmp_path, progress=False)
    assert cached and (again.best_support != first.best_support).nnz == 0
    assert again.best_lambda == first.best_lambda and again.config == config
    fresh, cached = distill_cached(data, config, tmp_path, progress=False, reuse=False)
    assert not cached and (fresh.best_support != first.best_support).nnz == 0  # distilled again, same seed
    other = DistillConfig(**dict(FAST, tau=0.5))
    assert distill_cache_path(data, other, tmp_path) != distill_cache_path(data, config, tmp_path)
    other_data = load_dataset("synthetic", n_users=200, n_items=150, seed=2, zipf_a=0.5, affinity_scale=4.0)
    assert distill_cache_path(other_data, config, tmp_path) != distill_cache_path(data, config, tmp_path)


def test_a_longer_run_continues_the_cached_shorter_one(data, tmp_path):
    """More steps of a cached config continue its last checkpoint (copied) and end where a run from scratch ends."""
    import dataclasses

    from infae_kit.distill import distill_cache_path, distill_cached
    from infae_kit.distill.cache import shorter_run

    base = dict(FAST, steps=6, eval_steps=(3,), log_freq=3)
    short_cfg, long_cfg = DistillConfig(**base), DistillConfig(**dict(base, steps=9))
    short, _ = distill_cached(data, short_cfg, tmp_path, progress=False)
    assert shorter_run(data, long_cfg, tmp_path) == distill_cache_path(data, short_cfg, tmp_path)
    longer, cached = distill_cached(data, long_cfg, tmp_path, progress=False)
    scratch = distill(data, long_cfg, progress=False)
    assert not cached and longer.history["loss"] == scratch.history["loss"]
    assert longer.history["loss"][:6] == short.history["loss"]
    assert (longer.best_support != scratch.best_support).nnz == 0 and longer.best_lambda == scratch.best_lambda
    again, cached = distill_cached(data, short_cfg, tmp_path, progress=False)  # the shorter run is kept as it was
    assert cached and again.history["loss"] == short.history["loss"]
    # a run that validated at its last step only because it was the last is not the start of a longer one
    odd = dataclasses.replace(short_cfg, steps=2)
    distill_cached(data, odd, tmp_path, progress=False)
    assert shorter_run(data, dataclasses.replace(odd, steps=4), tmp_path) is None


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_search_grid_parsing_and_ranking(data, tmp_path):
    from infae_kit.distill.search import parse_grid, search

    assert parse_grid(["tau=0.5,10", "gamma=8", "support=soft,topk", "log_freq=40"]) == {
        "tau": [0.5, 10.0], "gamma": [8], "support": ["soft", "topk"], "log_freq": [40]}
    for bad in (["tau"], ["tau=a"], ["width=3"]):
        with pytest.raises(ParameterError):
            parse_grid(bad)
    rows = search(data, {"tau": [0.5, 10.0]}, preset="ci", cache_dir=tmp_path, progress=False,
                  budget=20, gamma=8, steps=6)
    assert [r["overrides"]["tau"] for r in rows] != [] and len(rows) == 2
    assert rows[0]["val"]["NDCG@10"] >= rows[1]["val"]["NDCG@10"]
    assert all(r["config"]["budget"] == 20 and not r["cached"] for r in rows)


# -- checkpoints: killed runs and damaged files ----------------------------------------------------------------
CKPT = dict(FAST, steps=7, checkpoint_every=2, batch_size=64)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return distill(data, DistillConfig(**CKPT), progress=False, checkpoint_dir=tmp_path_factory.mktemp("full"))


@pytest.mark.parametrize("damaged", ["checkpoint.json", "newest npz", "both npz"])
def test_damaged_checkpoint_is_set_aside_and_the_run_restarts(data, uninterrupted, tmp_path, damaged):
    cfg = DistillConfig(**CKPT)
    distill(data, cfg, progress=False, checkpoint_dir=tmp_path, stop_at=5)
    npz = sorted(tmp_path.glob("ckpt_*.npz"))
    assert [p.name for p in npz] == ["ckpt_0000004.npz", "ckpt_0000005.npz"]  # the previous one is kept
    targets = {"checkpoint.json": [tmp_path / "checkpoint.json"], "newest npz": npz[-1:], "both npz": npz}[damaged]
    for path in targets:
        _truncate(path)
    with pytest.warns(DamagedCacheWarning) as record:
        resumed = distill(data, cfg, progress=False, checkpoint_dir=tmp_path)
    messages = " ".join(str(w.message) for w in record)
    for path in targets:
        assert path.name in messages and "set aside" in messages
        assert list(tmp_path.glob(path.name + ".damaged-*")), f"{path.name} was not set aside"
    # from step 5, step 4 or scratch: the run ends where the uninterrupted one ends
    np.testing.assert_array_equal(resumed.prior, uninterrupted.prior)
    assert resumed.history["loss"] == uninterrupted.history["loss"]
    assert (resumed.best_support != uninterrupted.best_support).nnz == 0
    again = distill(data, cfg, progress=False, checkpoint_dir=tmp_path)  # the rewritten checkpoints are good
    np.testing.assert_array_equal(again.prior, uninterrupted.prior)


@pytest.mark.parametrize("damaged", ["support.npz", "datacard.json"])
def test_damaged_cached_support_is_set_aside_and_recomputed(data, tmp_path, damaged):
    from infae_kit.distill import distill_cache_path, distill_cached

    config = DistillConfig(**FAST)
    first, _ = distill_cached(data, config, tmp_path, progress=False)
    path = distill_cache_path(data, config, tmp_path)
    _truncate(path / damaged)
    with pytest.warns(DamagedCacheWarning, match=damaged):
        again, cached = distill_cached(data, config, tmp_path, progress=False)
    assert not cached and (again.best_support != first.best_support).nnz == 0
    assert list(path.glob(damaged + ".damaged-*"))
    assert distill_cached(data, config, tmp_path, progress=False)[1]  # the rewritten artifact loads


_KILLED_RUN = """
import sys
from infae_kit.caching import DamagedCacheWarning
from infae_kit.data import load_dataset
from infae_kit.distill import DistillConfig, distill
data = load_dataset("synthetic", n_users=200, n_items=150, seed=1, zipf_a=0.5, affinity_scale=4.0)
distill(data, DistillConfig(**{cfg!r}), progress=False, checkpoint_dir=sys.argv[1])
"""


def test_run_killed_mid_way_resumes_to_the_identical_support(data, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = dict(FAST, steps=150, eval_steps=(), log_freq=75, checkpoint_every=1, batch_size=64)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN.format(cfg=cfg), str(tmp_path)],
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    manifest = tmp_path / "checkpoint.json"
    deadline = time.time() + 300
    step = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            step = json.loads(manifest.read_text())["step"]
        except (OSError, ValueError, KeyError):
            step = 0
        if step >= 10:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(manifest.read_text())["step"]
    assert 10 <= killed_at < 150
    resumed = distill(data, DistillConfig(**cfg), progress=False, checkpoint_dir=tmp_path)
    full = distill(data, DistillConfig(**cfg), progress=False, checkpoint_dir=tmp_path / "uninterrupted")
    assert resumed.history["steps_run"] == 150
    np.testing.assert_array_equal(resumed.prior, full.prior)
    assert (resumed.best_support != full.best_support).nnz == 0 and resumed.best_lambda == full.best_lambda
