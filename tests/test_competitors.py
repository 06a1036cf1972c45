"""Tests of infae_kit.models.competitors: Bias-only's closed form, BPR sampling, the four trained models on planted
synthetic data, determinism, the recommender interface, early stopping, errors and recorded configurations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.models.baselines import PopRec
from infae_kit.models.competitors import (
    COMPETITOR_NAMES,
    PAPER_GRID,
    SEARCH_SPACE,
    BiasOnly,
    LightGCN,
    MF,
    NeuMF,
    fit_and_evaluate_competitor,
    make_competitor,
    parse_competitor_names,
    record_config,
    recorded_config,
    search_competitor,
)
from infae_kit.models.bias import bias_only_least_squares
from infae_kit.models.neumf import GMF, NCFMLP, neumf_params_from_towers, tower_cache_path
from infae_kit.models.lightgcn import _BipartiteProduct
from infae_kit.models.training import sample_bpr_triplets
from infae_kit.data import load_dataset
from infae_kit.errors import DataError, ParameterError
from infae_kit.evaluation.protocol import evaluate_model

# Short, converging settings for the planted-structure data below (each model trains in a few seconds).
QUICK = {
    "mf": dict(latent_size=16, learning_rate=0.01, epochs=30, batch_size=2048),
    "neumf": dict(latent_size=16, learning_rate=0.01, epochs=30, batch_size=2048),
    "lightgcn": dict(latent_size=16, n_layers=2, learning_rate=0.01, epochs=30, batch_size=2048),
    "mvae": dict(latent_size=32, hidden_size=128, learning_rate=0.003, epochs=30, batch_size=128),
}


@pytest.fixture(scope="module")
def planted():
    """600 users × 200 items drawn from 4 latent factors plus Zipf popularity, the paper's 80/10/10 split."""
    return load_dataset("synthetic", n_users=600, n_items=200, n_factors=4, mean_interactions=25, seed=3)


@pytest.fixture(scope="module")
def small_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------
# Bias-only
# ---------------------------------------------------------------------------------------------------------
def _design(n, m):
    """Design matrix of r_ui = α + β_u + β_i over every cell (row u*m+i)."""
    rows = np.arange(n * m)
    users, items = np.divmod(rows, m)
    D = np.zeros((n * m, 1 + n + m))
    D[:, 0] = 1.0
    D[rows, 1 + users] = 1.0
    D[rows, 1 + n + items] = 1.0
    return D


def test_bias_only_is_the_least_squares_solution(small_matrix):
    X = small_matrix.toarray().astype(np.float64)
    n, m = X.shape
    D = _design(n, m)
    alpha, bu, bi = bias_only_least_squares(small_matrix)
    fitted = alpha + bu[:, None] + bi[None, :]
    # λ = 0: the fitted values are unique (the parameters only up to the two-way layout's constraint)
    coef, *_ = np.linalg.lstsq(D, X.ravel(), rcond=None)
    np.testing.assert_allclose(fitted.ravel(), D @ coef, atol=1e-10)
    # ridge > 0 on the biases (not on α): a unique solution of the penalised normal equations
    ridge = 3.0
    penalty = np.diag([0.0] + [ridge] * (n + m))
    exact = np.linalg.solve(D.T @ D + penalty, D.T @ X.ravel())
    alpha, bu, bi = bias_only_least_squares(small_matrix, ridge=ridge)
    np.testing.assert_allclose(np.concatenate([[alpha], bu, bi]), exact, atol=1e-10)


def test_bias_only_model_scores_and_ranks_like_poprec(planted):
    model = BiasOnly(ridge=2.0).fit(planted.train)
    alpha, bu, bi = bias_only_least_squares(planted.train, ridge=2.0)
    np.testing.assert_allclose(model.predict(planted.train), alpha + bu[:, None] + bi[None, :], rtol=1e-5, atol=1e-6)
    ours, pop = evaluate_model(model, planted).metrics, evaluate_model(PopRec().fit(planted.train), planted).metrics
    for name in ("HR@10", "HR@100", "NDCG@10", "NDCG@100", "PSP@10"):  # ranking = item popularity
        assert ours[name] == pytest.approx(pop[name], abs=1e-9), name
    assert ours["AUC"] != pop["AUC"]  # the user bias moves the pooled AUC only


# ---------------------------------------------------------------------------------------------------------
# BPR sampling, the sparse product
# ---------------------------------------------------------------------------------------------------------
def test_bpr_triplets_cover_every_positive_once_with_true_negatives(small_matrix):
    X = sp.csr_matrix(small_matrix)
    X.sort_indices()
    users, pos, neg = sample_bpr_triplets(np.random.default_rng(1), X, n_rounds=50)
    assert len(users) == X.nnz
    pairs = sorted(zip(users.tolist(), pos.tolist()))
    coo = X.tocoo()
    assert pairs == sorted(zip(coo.row.tolist(), coo.col.tolist()))
    dense = X.toarray()
    assert np.all(dense[users, neg] == 0)  # no negative is a train positive of its user
    again = sample_bpr_triplets(np.random.default_rng(1), X, n_rounds=50)
    assert all(np.array_equal(a, b) for a, b in zip((users, pos, neg), again))


def test_bipartite_product_and_its_gradient_match_dense(small_matrix):
    rng = np.random.default_rng(2)
    X = sp.csr_matrix(small_matrix)
    X.sort_indices()
    values = jnp.asarray(rng.random(X.nnz).astype(np.float32))
    dense = sp.csr_matrix((np.asarray(values), X.indices, X.indptr), shape=X.shape).toarray()
    product = _BipartiteProduct(X)
    items = jnp.asarray(rng.standard_normal((X.shape[1], 3)).astype(np.float32))
    users = jnp.asarray(rng.standard_normal((X.shape[0], 3)).astype(np.float32))
    np.testing.assert_allclose(product.users_from_items(values, items), dense @ items, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(product.items_from_users(values, users), dense.T @ users, rtol=1e-5, atol=1e-5)

    def loss_sparse(u, i):
        return jnp.sum(jnp.sin(product.users_from_items(values, i))) + jnp.sum(product.items_from_users(values, u) ** 2)

    def loss_dense(u, i):
        return jnp.sum(jnp.sin(dense @ i)) + jnp.sum((dense.T @ u) ** 2)

    for got, want in zip(jax.jit(jax.grad(loss_sparse, argnums=(0, 1)))(users, items),
                         jax.grad(loss_dense, argnums=(0, 1))(users, items)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# trained models
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(planted):
    return {name: fit_and_evaluate_competitor(name, planted, QUICK[name]) for name in QUICK}


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
@pytest.mark.parametrize("name", list(QUICK))
def test_trained_models_beat_popularity_on_planted_structure(planted, trained, name):
    pop = evaluate_model(PopRec().fit(planted.train), planted).metrics
    ours = trained[name].test_metrics
    # PopRec only knows popularity; the planted latent factors are what the models must find
    assert ours["NDCG@10"] > 1.1 * pop["NDCG@10"], (name, ours["NDCG@10"], pop["NDCG@10"])
    assert ours["HR@100"] > pop["HR@100"], name
    assert ours["AUC"] > pop["AUC"], name
    assert ours["AUC"] > 0.5 and np.isfinite(list(ours.values())).all()


@pytest.mark.parametrize("name", list(QUICK))
def test_early_stopping_keeps_the_best_validated_parameters(planted, trained, name):
    report = trained[name]
    model = report.model
    validated = [h for h in model.history_ if "val HR@100" in h]
    assert validated and model.best_epoch_ == max(validated, key=lambda h: h["val HR@100"])["epoch"]
    # the kept parameters are the best epoch's: the kit's own validation pass gives the same HR@100
    assert report.val_metrics["HR@100"] == pytest.approx(model.best_validation_, abs=1e-6)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
@pytest.mark.parametrize("name", ["mf", "lightgcn", "mvae"])
def test_same_seed_same_scores(planted, name):
    config = {**QUICK[name], "epochs": 3}
    a = make_competitor(name, **config, seed=7).fit(planted.train).predict(planted.train)
    b = make_competitor(name, **config, seed=7).fit(planted.train).predict(planted.train)
    c = make_competitor(name, **config, seed=8).fit(planted.train).predict(planted.train)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
@pytest.mark.parametrize("cls", [NeuMF, GMF, NCFMLP])
def test_neumf_and_towers_score_all_items_as_their_pair_scores(planted, cls):
    model = cls(latent_size=8, epochs=2, batch_size=1024, **({} if cls is GMF else {"n_layers": 2})).fit(planted.train)
    users = np.array([0, 5, 17])
    full = model.predict(planted.train[users], users=users)
    items = jnp.arange(planted.n_items)
    for row, user in enumerate(users):
        pairs = model._pair_scores(model.params_, jnp.full(planted.n_items, user), items,
                                     jax.random.PRNGKey(0), False)
        np.testing.assert_allclose(full[row], pairs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mf", "lightgcn", "mvae", "bias"])
def test_recommend_excludes_seen_items_and_user_indices(planted, trained, name):
    model = trained[name].model if name in trained else BiasOnly().fit(planted.train)
    context = planted.train_val()
    top = model.recommend(context, k=20)
    assert top.shape == (planted.n_users, 20)
    seen = context.tolil().rows
    assert all(not set(top[u]) & set(seen[u]) for u in range(planted.n_users))
    if getattr(model, "needs_user_index", False):
        users = np.array([3, 1])
        np.testing.assert_array_equal(model.recommend(context[users], k=5, users=users), top[users, :5])
        with pytest.raises(ParameterError, match="users="):
            model.predict(context[:10])
        with pytest.raises(ParameterError, match="fitted-user indices"):
            model.predict(context[:1], users=np.array([planted.n_users]))


def test_mvae_scores_new_users(planted, trained):
    model = trained["mvae"].model
    new_user = sp.csr_matrix(planted.train[:2].toarray())
    assert model.predict(new_user).shape == (2, planted.n_items)


# ---------------------------------------------------------------------------------------------------------
# errors, names, configurations
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, params, match",
    [
        ("mf", {"latent_size": 0}, "latent_size"),
        ("mf", {"learning_rate": -0.1}, "learning_rate"),
        ("neumf", {"n_layers": 0}, "n_layers"),
        ("neumf", {"mlp_l2": -1e-3}, "mlp_l2"),
        ("neumf", {"output_l2": float("nan")}, "output_l2"),
        ("neumf", {"optimizer": "rmsprop"}, "optimizer must be one of"),
        ("neumf", {"pretrain": "yes"}, "pretrain must be True or False"),
        ("neumf", {"pretrain_alpha": 1.0}, r"pretrain_alpha must be in \(0, 1\)"),
        ("neumf", {"pretrain_alpha": 0.0}, "would discard one pre-trained tower"),
        ("neumf", {"pretrain_alpha": "half"}, "pretrain_alpha"),
        ("neumf", {"pretrain_epochs": 0}, "pretrain_epochs"),
        ("neumf", {"pretrain_learning_rate": 0.0}, "pretrain_learning_rate"),
        ("lightgcn", {"dropout": 1.0}, "dropout"),
        ("mvae", {"batch_size": 2.5}, "batch_size"),
        ("mvae", {"epochs": 0}, "epochs"),
        ("bias", {"ridge": -1}, "ridge"),
        ("mf", {"hidden": 3}, "hidden"),
        ("svd", {}, "unknown competitor 'svd'"),
    ],
)
def test_bad_hyper_parameters_raise(name, params, match):
    with pytest.raises(ParameterError, match=match):
        make_competitor(name, **params)


def test_fit_checks_its_input(planted):
    with pytest.raises(DataError, match="validation has"):
        MF(epochs=1).fit(planted.train, validation=planted.val[:10])
    with pytest.raises(DataError, match="no interactions"):
        MF(epochs=1).fit(sp.csr_matrix((5, 4), dtype=np.float32))
    with pytest.raises(ParameterError, match="not fitted"):
        LightGCN().predict(planted.train)


def test_parse_competitor_names():
    assert parse_competitor_names("all") == list(COMPETITOR_NAMES)
    assert parse_competitor_names(" MF, mvae ,mf") == ["mf", "mvae"]
    assert parse_competitor_names("") == [] and parse_competitor_names("none") == []
    with pytest.raises(ParameterError, match="unknown competitor name"):
        parse_competitor_names("mf,lightgnc")


def test_search_space_is_table3():
    assert PAPER_GRID == {"latent_size": (4, 8, 16, 32, 50, 64, 128), "n_layers": (1, 2, 3),
                          "learning_rate": (0.001, 0.006, 0.01), "dropout": (0.0, 0.3, 0.5)}
    assert set(SEARCH_SPACE) == set(COMPETITOR_NAMES)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_search_picks_the_best_validated_trial(planted):
    report = search_competitor("mf", planted, n_trials=2, seed=1,
                               grid={**PAPER_GRID, "latent_size": (4, 16), "l2": (1e-4,)},
                               fixed={"epochs": 5, "batch_size": 2048})
    assert len(report.trials) == 2
    best = max(report.trials, key=lambda t: t["val"]["HR@100"])
    assert report.val_metrics["HR@100"] == best["val"]["HR@100"]
    assert {k: report.config[k] for k in best["config"]} == best["config"]  # the winner's configuration is kept
    # the reported test metrics are those of the returned model (train + validation as context)
    from infae_kit.evaluation.protocol import evaluate_model

    assert report.test_metrics == pytest.approx(evaluate_model(report.model, planted, "test").metrics)


def test_record_and_read_configs(tmp_path):
    path = tmp_path / "configs.json"
    assert recorded_config("mf", "magazine", path=path) == {}
    record_config("mf", "magazine", {"latent_size": 8}, {"HR@100": 7.1234567}, note="test", path=path)
    record_config("mvae", "default", {"latent_size": 32}, path=path)
    assert recorded_config("mf", "magazine", path=path) == {"latent_size": 8}
    assert recorded_config("mvae", "ml-1m", path=path) == {"latent_size": 32}  # falls back to "default"
    with pytest.raises(ParameterError):
        recorded_config("svd", "magazine", path=path)


@pytest.mark.parametrize("dataset", ["magazine", "ml-1m"])
def test_repo_records_a_configuration_for_every_trained_model(dataset):
    for name in COMPETITOR_NAMES[1:]:
        config = recorded_config(name, dataset)
        assert config, f"no recorded configuration for {name} on {dataset}"
        make_competitor(name, **config)  # and it is valid


# ---------------------------------------------------------------------------------------------------------
# NeuMF: He et al.'s recipe (pre-trained towers, L2 on the MLP, SGD fine-tuning)
# ---------------------------------------------------------------------------------------------------------
PRETRAIN = dict(latent_size=8, n_layers=2, learning_rate=0.01, batch_size=1024, epochs=4, eval_every=2,
                patience=2)


@pytest.fixture(scope="module")
def tower_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neumf-towers")


def test_pretrained_neumf_starts_from_the_towers(planted, tower_cache):
    alpha = 0.3
    # SGD with a vanishing step: after one epoch NeuMF still holds its initialisation
    model = NeuMF(**{**PRETRAIN, "learning_rate": 1e-12}, pretrain=True, pretrain_alpha=alpha, optimizer="sgd",
                  pretrain_learning_rate=PRETRAIN["learning_rate"], pretrain_cache_dir=tower_cache)
    model.fit(planted.train, validation=planted.val)
    assert set(model.towers_) == {"gmf", "ncf_mlp"}
    gmf_params, mlp_params = model.pretrain_towers(planted.train, planted.val)
    assert all(t["from_cache"] for t in model.towers_.values())  # the second call reads them back
    init = neumf_params_from_towers(gmf_params, mlp_params, alpha)
    for name in ("gmf_user", "gmf_item"):
        np.testing.assert_array_equal(init[name], gmf_params[name])
    for name in ("mlp_user", "mlp_item"):
        np.testing.assert_array_equal(init[name], mlp_params[name])
    for got, want in zip(init["mlp"], mlp_params["mlp"]):
        np.testing.assert_array_equal(got["w"], want["w"])
        np.testing.assert_array_equal(got["b"], want["b"])
    np.testing.assert_allclose(init["out"], np.concatenate([alpha * np.asarray(gmf_params["out"]),
                                                            (1 - alpha) * np.asarray(mlp_params["out"])]))
    for got, want in zip(jax.tree_util.tree_leaves(model.params_), jax.tree_util.tree_leaves(init)):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # before fine-tuning NeuMF scores α·GMF + (1 − α)·MLP
    users, items, key = jnp.arange(40) % planted.n_users, jnp.arange(40) % planted.n_items, jax.random.PRNGKey(0)
    gmf, mlp = GMF(latent_size=8), NCFMLP(latent_size=8, n_layers=2)
    mixed = (alpha * gmf._pair_scores(gmf_params, users, items, key, False)
             + (1 - alpha) * mlp._pair_scores(mlp_params, users, items, key, False))
    np.testing.assert_allclose(model._pair_scores(init, users, items, key, False), mixed, rtol=1e-5, atol=1e-6)


def test_pretraining_changes_the_result_and_is_seeded(planted, tower_cache):
    plain = NeuMF(**PRETRAIN).fit(planted.train, validation=planted.val).predict(planted.train)
    first = NeuMF(**PRETRAIN, pretrain=True, pretrain_cache_dir=tower_cache)
    a = first.fit(planted.train, validation=planted.val).predict(planted.train)
    second = NeuMF(**PRETRAIN, pretrain=True, pretrain_cache_dir=tower_cache)
    b = second.fit(planted.train, validation=planted.val).predict(planted.train)
    assert all(t["from_cache"] for t in second.towers_.values())
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, plain, atol=1e-3)
    # another seed trains other towers (another cache entry) and another model
    other = NeuMF(**{**PRETRAIN, "seed": 7}, pretrain=True, pretrain_cache_dir=tower_cache)
    c = other.fit(planted.train, validation=planted.val).predict(planted.train)
    assert not any(t["from_cache"] for t in other.towers_.values())
    assert not np.allclose(a, c, atol=1e-3)
    assert first.config()["pretrain"] is True and "pretrain_cache_dir" not in first.config()


def test_damaged_tower_cache_is_set_aside_and_trained_again(planted, tmp_path):
    model = NeuMF(**PRETRAIN, pretrain=True, pretrain_cache_dir=tmp_path)
    reference = model.pretrain_towers(planted.train, planted.val)
    gmf, _ = model.make_towers()
    path = tower_cache_path(gmf, planted.train, planted.val, tmp_path)
    assert path.exists()
    path.write_bytes(b"not an npz file")
    again = model.pretrain_towers(planted.train, planted.val)
    assert not model.towers_["gmf"]["from_cache"] and model.towers_["ncf_mlp"]["from_cache"]
    assert path.with_name(path.name + ".damaged").exists() and path.exists()
    for got, want in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(got, want)  # seeded: the same tower again
    # the key is checked too: other data never reads this entry
    assert tower_cache_path(gmf, planted.train[:-1], planted.val[:-1], tmp_path) != path


def test_mlp_and_output_l2_add_their_penalties_and_shrink_their_weights(planted):
    model = NeuMF(latent_size=8, n_layers=2, mlp_l2=0.5, output_l2=0.25, epochs=1, batch_size=1024)
    params = model.fit(planted.train).params_
    batch = [jnp.arange(16) % planted.n_users, jnp.arange(16) % planted.n_items, (jnp.arange(16) + 3) % planted.n_items]
    mask, key = jnp.ones(16), jax.random.PRNGKey(1)
    without = NeuMF(latent_size=8, n_layers=2)
    penalty = (0.5 * 0.5 * sum(float(jnp.sum(layer["w"] ** 2)) for layer in params["mlp"])
               + 0.25 * 0.5 * float(jnp.sum(params["out"] ** 2)))
    assert float(model._loss(params, batch, mask, key, 0, {})) == pytest.approx(
        float(without._loss(params, batch, mask, key, 0, {})) + penalty, rel=1e-5)
    gmf = GMF(latent_size=8, output_l2=0.25)  # the GMF tower: its output layer only
    gmf_params = {**params, "out": params["out"][:8]}
    assert float(gmf._loss(gmf_params, batch, mask, key, 0, {})) == pytest.approx(
        float(GMF(latent_size=8)._loss(gmf_params, batch, mask, key, 0, {}))
        + 0.25 * 0.5 * float(jnp.sum(params["out"][:8] ** 2)), rel=1e-5)
    config = dict(latent_size=8, n_layers=2, learning_rate=0.01, epochs=10, batch_size=1024)
    free = NeuMF(**config).fit(planted.train).params_["mlp"]
    shrunk = NeuMF(**config, mlp_l2=0.1).fit(planted.train).params_["mlp"]
    norm = lambda layers: sum(float(jnp.sum(layer["w"] ** 2)) for layer in layers)  # noqa: E731
    assert norm(shrunk) < 0.8 * norm(free)
    free_out = GMF(**{k: v for k, v in config.items() if k != "n_layers"}).fit(planted.train).params_["out"]
    small_out = GMF(**{k: v for k, v in config.items() if k != "n_layers"}, output_l2=0.1).fit(planted.train).params_["out"]
    assert float(jnp.sum(small_out ** 2)) < 0.8 * float(jnp.sum(free_out ** 2))


def test_sgd_fine_tuning_is_plain_sgd():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    optimizer = NeuMF(optimizer="sgd", learning_rate=0.1)._optimizer()
    state = optimizer.init(params)
    for _ in range(2):  # no momentum: the same gradient gives the same step every time
        updates, state = optimizer.update(grads, state, params)
        np.testing.assert_allclose(updates["w"], -0.1 * grads["w"], rtol=1e-6)


def test_neumf_pretraining_refuses_a_warm_start_and_mismatched_towers(planted, tower_cache):
    model = NeuMF(**PRETRAIN, pretrain=True, pretrain_cache_dir=tower_cache)
    with pytest.raises(ParameterError, match="init_params"):
        model.fit(planted.train, init_params={"anything": 0})
    gmf_params, mlp_params = model.pretrain_towers(planted.train, planted.val)
    with pytest.raises(ParameterError, match="different shapes"):
        neumf_params_from_towers(gmf_params, {**mlp_params, "mlp_item": mlp_params["mlp_item"][:-1]})
    with pytest.raises(ParameterError, match="no 'gmf_user'"):
        neumf_params_from_towers(mlp_params, mlp_params)


def test_search_over_given_configurations_resumes_from_its_trials_file(planted, tmp_path):
    path = tmp_path / "trials.json"
    fixed = {"latent_size": 8, "epochs": 2, "batch_size": 2048}
    configs = [{"l2": 1e-4}, {"l2": 1e-2}]
    report = search_competitor("mf", planted, fixed=fixed, configs=configs, trials_path=path, test_trials=True)
    assert [t["config"]["l2"] for t in report.trials] == [1e-4, 1e-2]
    assert all("test" in t for t in report.trials)
    assert report.val_metrics["HR@100"] == max(t["val"]["HR@100"] for t in report.trials)
    # a rerun with one more configuration trains only that one and picks the same best (retrained, seeded)
    again = search_competitor("mf", planted, fixed=fixed, configs=configs + [{"l2": 1e-3}], trials_path=path)
    assert [t["fit_s"] for t in again.trials[:2]] == [t["fit_s"] for t in report.trials]
    assert len(again.trials) == 3
    best = max(again.trials, key=lambda t: t["val"]["HR@100"])
    assert again.val_metrics["HR@100"] == pytest.approx(best["val"]["HR@100"], abs=1e-9)
    with pytest.raises(ParameterError, match="non-empty list of dicts"):
        search_competitor("mf", planted, configs=[])
    with pytest.raises(DataError, match="not of this search"):
        search_competitor("neumf", planted, fixed=fixed, configs=configs, trials_path=path)
