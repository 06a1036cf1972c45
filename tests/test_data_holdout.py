"""The validation-holdout protocol: what moves, what stays, and that the test pass is the paper protocol's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from shared_data import needs_data_file
from infae_kit.caching import dataset_fingerprint
from infae_kit.data import (
    Interactions,
    apply_validation_protocol,
    build_rec_dataset,
    dataset_label,
    dataset_statistics,
    load_dataset,
    users_without_validation,
    with_validation_holdout,
)
from infae_kit.distill import distill_cache_path, distill_config_for
from infae_kit.errors import DataError, ParameterError
from infae_kit.evaluation.protocol import evaluate_scorer, propensity_weights_of
from infae_kit.models.baselines import PopRec

needs_magazine = needs_data_file("magazine/index.npz")


@pytest.fixture(scope="module")
def sparse_data():
    """Few interactions per user: most users have no validation item, as on Magazine."""
    return load_dataset("synthetic", n_users=400, n_items=120, mean_interactions=5, seed=3)


def _per_user(mat):
    return np.diff(sp.csr_matrix(mat).indptr)


def _same(a, b) -> bool:
    diff = sp.csr_matrix(a) - sp.csr_matrix(b)
    diff.eliminate_zeros()
    return a.shape == b.shape and diff.nnz == 0


def test_holdout_moves_one_train_item_of_each_user_without_validation(sparse_data):
    paper = sparse_data
    held = with_validation_holdout(paper, seed=7)
    n_train, n_val = _per_user(paper.train), _per_user(paper.val)
    eligible = (n_val == 0) & (n_train >= 2)
    assert 50 < eligible.sum() < paper.n_users and (n_val > 0).any()  # the fixture has all three kinds of user
    # train' + val' == train + val, values included; test is the same matrix
    assert _same(held.train + held.val, paper.train + paper.val)
    assert _same(held.test, paper.test) and _same(held.train_val(), paper.train_val())
    # train' ⊂ train, one item fewer for exactly the eligible users, and that item is their only validation item
    assert held.train.multiply(paper.train).nnz == held.train.nnz
    assert np.array_equal(_per_user(paper.train) - _per_user(held.train), eligible.astype(int))
    assert np.array_equal(_per_user(held.val), np.where(eligible, 1, n_val))
    assert _same(held.holdout, held.val - paper.val) and held.holdout.nnz == eligible.sum()
    assert held.holdout.multiply(paper.train).nnz == held.holdout.nnz
    # users who had a validation item (and users with too few train items) are untouched
    untouched = np.flatnonzero(~eligible)
    for split in ("train", "val"):
        assert _same(getattr(held, split)[untouched], getattr(paper, split)[untouched])
    assert np.array_equal(users_without_validation(held), np.flatnonzero((n_val == 0) & ~eligible))
    # the paper protocol's train split is rebuilt for the negatives and the propensities; the source is unchanged
    assert _same(held.paper_train(), paper.train) and held.paper_train().has_sorted_indices
    assert paper.holdout is None and paper.validation == "paper" and held.validation == "holdout"
    assert held.name == paper.name and dataset_statistics(held)["validation"] == "holdout"
    assert "validation='holdout'" in repr(held) and "holdout" not in repr(paper)


def test_the_test_pass_is_the_paper_protocols(sparse_data):
    """Same context, targets, masks, AUC negatives and PSP weights: a fixed scorer gets identical test metrics."""
    held = with_validation_holdout(sparse_data, seed=7)
    assert np.array_equal(held.auc_negatives(), sparse_data.auc_negatives())
    assert np.array_equal(held.auc_negatives(20, 3), sparse_data.auc_negatives(20, 3))
    assert held._auc_negatives_cache is not sparse_data._auc_negatives_cache
    assert np.array_equal(propensity_weights_of(held), propensity_weights_of(sparse_data))
    scorer = PopRec().fit(sparse_data.train).predict
    paper_test = evaluate_scorer(scorer, sparse_data, "test").metrics
    assert evaluate_scorer(scorer, held, "test").metrics == paper_test
    # validation is where the protocols differ: more users have a target
    paper_val = evaluate_scorer(scorer, sparse_data, "val").per_user["HR@100"]
    held_val = evaluate_scorer(scorer, held, "val").per_user["HR@100"]
    assert (held_val > 0).sum() > (paper_val > 0).sum()


def test_holdout_is_seeded(sparse_data):
    a = with_validation_holdout(sparse_data, seed=1)
    b = with_validation_holdout(sparse_data, seed=1)
    c = with_validation_holdout(sparse_data, seed=2)
    assert _same(a.train, b.train) and _same(a.val, b.val)
    assert not _same(a.holdout, c.holdout) and a.holdout.nnz == c.holdout.nnz
    assert dataset_fingerprint(a) == dataset_fingerprint(b) != dataset_fingerprint(c)
    # load_dataset draws it with its seed
    loaded = load_dataset("synthetic", n_users=400, n_items=120, mean_interactions=5, seed=3, validation="holdout")
    assert _same(loaded.holdout, with_validation_holdout(sparse_data, seed=3).holdout)
    assert apply_validation_protocol(sparse_data, "paper") is sparse_data
    assert _same(apply_validation_protocol(sparse_data, "holdout", seed=1).val, a.val)


def test_caches_key_the_holdout_dataset_apart(sparse_data):
    held = with_validation_holdout(sparse_data)
    assert dataset_fingerprint(held) != dataset_fingerprint(sparse_data)
    config = distill_config_for("synthetic", "ci", budget=10)
    assert distill_cache_path(held, config, "cache") != distill_cache_path(sparse_data, config, "cache")


def test_min_train_items(sparse_data):
    n_train, n_val = _per_user(sparse_data.train), _per_user(sparse_data.val)
    everyone = with_validation_holdout(sparse_data, min_train_items=1)
    assert everyone.holdout.nnz == int((n_val == 0).sum())
    assert users_without_validation(everyone).size == 0
    assert int((_per_user(everyone.train) == 0).sum()) == int(((n_val == 0) & (n_train == 1)).sum())
    few = with_validation_holdout(sparse_data, min_train_items=4)
    assert few.holdout.nnz == int(((n_val == 0) & (n_train >= 4)).sum())


def test_nothing_to_move_keeps_the_matrices_and_the_fingerprint(sparse_data):
    held = with_validation_holdout(sparse_data, min_train_items=10_000)
    assert held.holdout.nnz == 0 and held.validation == "holdout"
    assert _same(held.train, sparse_data.train) and _same(held.val, sparse_data.val)
    assert dataset_fingerprint(held) == dataset_fingerprint(sparse_data)


def test_the_labelled_table_is_relabelled_with_repeats_and_string_ids():
    # user "b" has a repeated train row of item 11 (counted twice): moving it moves both rows and the count
    user = np.array(["a", "a", "a", "b", "b", "b", "b", "b", "c", "c", "c", "c"])
    item = np.array([10, 11, 12, 10, 11, 11, 12, 13, 10, 11, 12, 13])
    label = np.array([0, 2, 2, 0, 0, 0, 2, 2, 0, 0, 1, 2])
    codes, user_code = np.unique(user, return_inverse=True)
    table = Interactions(user=user_code, item=item, label=label, user_ids=codes)
    paper = build_rec_dataset(table, name="toy", repeats="count")
    seen = set()
    for seed in range(20):
        held = with_validation_holdout(paper, seed=seed)
        rebuilt = build_rec_dataset(held.interactions, name="toy", repeats="count")
        for split in ("train", "val", "test"):
            assert _same(getattr(rebuilt, split), getattr(held, split)), split
        assert _same(held.train + held.val, paper.train + paper.val)
        assert held.holdout.nnz == 1 and held.holdout[0].nnz == 0 and held.holdout[2].nnz == 0  # a: 1 item; c: val
        seen.add((int(held.holdout.indices[0]), float(held.holdout.data[0])))
    assert seen == {(0, 1.0), (1, 2.0)}  # either train item of b, the repeated one with its count
    assert paper.interactions.label_counts()["val"] == 1  # the source table is not changed


def test_bad_arguments_are_refused(sparse_data):
    with pytest.raises(ParameterError, match="RecDataset"):
        with_validation_holdout(sparse_data.train)
    with pytest.raises(ParameterError, match="seed"):
        with_validation_holdout(sparse_data, seed=-1)
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ParameterError, match="min_train_items"):
            with_validation_holdout(sparse_data, min_train_items=bad)
    with pytest.raises(DataError, match="already has a validation holdout"):
        with_validation_holdout(with_validation_holdout(sparse_data))
    with pytest.raises(ParameterError, match="validation must be one of"):
        load_dataset("synthetic", n_users=50, validation="holdot")
    with pytest.raises(ParameterError, match="validation must be one of"):
        dataset_label("magazine", "Holdout")
    other_table = dataclasses.replace(sparse_data, interactions=sparse_data.interactions.subset(slice(0, 100)))
    with pytest.raises(DataError, match="not the one behind the matrices"):
        with_validation_holdout(other_table)
    no_table = with_validation_holdout(dataclasses.replace(sparse_data, interactions=None))
    assert no_table.interactions is None and no_table.holdout.nnz > 0


def test_dataset_label_files_holdout_results_apart():
    assert dataset_label("magazine") == dataset_label("magazine", "paper") == "magazine"
    assert dataset_label("magazine", "holdout") == "magazine-holdout"


@needs_magazine
def test_magazine_holdout():
    paper = load_dataset("magazine")
    held = load_dataset("magazine", validation="holdout")
    n_train, n_val = _per_user(paper.train), _per_user(paper.val)
    assert held.holdout.nnz == int(((n_val == 0) & (n_train >= 2)).sum()) > 0
    assert users_without_validation(held).size == int(((n_val == 0) & (n_train < 2)).sum())
    assert _same(held.train_val(), paper.train_val()) and _same(held.test, paper.test)
    assert np.array_equal(held.auc_negatives(), paper.auc_negatives())
    assert dataset_fingerprint(held)["train_sha256"] != dataset_fingerprint(paper)["train_sha256"]
