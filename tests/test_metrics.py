"""Tests of infae_kit.evaluation.metrics: hand-computed cases, edge cases, and independent reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.evaluation import metrics as M
from infae_kit.errors import NumericalError, ParameterError


def csr_from_sets(sets: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, items in enumerate(sets) for _ in items]
    cols = [i for items in sets for i in sorted(items)]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sets), n_items))


# --------------------------------------------------------------------------------------------------------
# hand-computed case: 3 users, 6 items
#   user 0: targets {1, 4}        top-3 = [1, 2, 4]  hits [1, 0, 1]
#   user 1: targets {0, 2, 3, 5}  top-3 = [5, 1, 0]  hits [1, 0, 1]
#   user 2: no targets            top-3 = [0, 1, 2]  -> 0 for every metric
# --------------------------------------------------------------------------------------------------------
HAND_TARGETS = csr_from_sets([{1, 4}, {0, 2, 3, 5}, set()], 6)
HAND_TOP3 = np.array([[1, 2, 4], [5, 1, 0], [0, 1, 2]])
HAND_WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # w(i) = i + 1


def test_hit_rate_hand_case():
    # k=3: user 0: 2 hits / min(2, 3) = 1.0 ; user 1: 2 hits / min(4, 3) = 2/3 ; user 2: 0
    np.testing.assert_allclose(M.hit_rate_at_k(HAND_TOP3, HAND_TARGETS, 3), [1.0, 2 / 3, 0.0])
    # k=1: user 0: item 1 hit -> 1/min(2,1) = 1 ; user 1: item 5 hit -> 1 ; user 2: 0
    np.testing.assert_allclose(M.hit_rate_at_k(HAND_TOP3, HAND_TARGETS, 1), [1.0, 1.0, 0.0])
    # k=2: user 0: [1, 2] -> 1 hit / min(2,2) = 0.5 ; user 1: [5, 1] -> 1 hit / min(4,2) = 0.5
    np.testing.assert_allclose(M.hit_rate_at_k(HAND_TOP3, HAND_TARGETS, 2), [0.5, 0.5, 0.0])


def test_ndcg_hand_case():
    # user 0, k=3: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5 ; IDCG over min(2,3)=2 ranks = 1 + 1/log2(3)
    # user 1, k=3: DCG = 1 + 0.5 = 1.5 ; IDCG over min(4,3)=3 ranks = 1 + 1/log2(3) + 1/log2(4)
    expected = [1.5 / (1 + 1 / math.log2(3)), 1.5 / (1 + 1 / math.log2(3) + 0.5), 0.0]
    np.testing.assert_allclose(M.ndcg_at_k(HAND_TOP3, HAND_TARGETS, 3), expected)
    np.testing.assert_allclose(expected[:2], [0.919720, 0.703918], atol=1e-6)
    # k=2: user 0: DCG 1 (item 1 at rank 1), IDCG over 2 = 1 + 1/log2(3) ; user 1: DCG 1, IDCG over 2 ranks
    np.testing.assert_allclose(M.ndcg_at_k(HAND_TOP3, HAND_TARGETS, 2), [1 / (1 + 1 / math.log2(3))] * 2 + [0.0])


def test_psp_hand_case():
    # user 0, k=3: hits items 1, 4 -> (w1 + w4) / min(2,3) = (2 + 5) / 2 = 3.5 ;
    #   denominator = sum of the 2 largest target weights {w1=2, w4=5} = 7 (not divided by 2) -> 3.5 / 7 = 0.5
    # user 1, k=3: hits items 5, 0 -> (6 + 1) / 3 = 7/3 ; denominator = 3 largest of {1, 3, 4, 6} = 13 -> 7/39
    np.testing.assert_allclose(M.psp_at_k(HAND_TOP3, HAND_TARGETS, 3, HAND_WEIGHTS), [0.5, 7 / 39, 0.0])
    # k=1: user 0: w1 / 1 = 2 over largest 1 target weight 5 -> 0.4 ; user 1: w5 = 6 over 6 -> 1.0
    np.testing.assert_allclose(M.psp_at_k(HAND_TOP3, HAND_TARGETS, 1, HAND_WEIGHTS), [0.4, 1.0, 0.0])


def test_ranking_metrics_matches_single_functions():
    out = M.ranking_metrics(HAND_TOP3, HAND_TARGETS, ks=(1, 3), weights=HAND_WEIGHTS)
    assert set(out) == {"HR@1", "NDCG@1", "PSP@1", "HR@3", "NDCG@3", "PSP@3"}
    for k in (1, 3):
        np.testing.assert_allclose(out[f"HR@{k}"], M.hit_rate_at_k(HAND_TOP3, HAND_TARGETS, k))
        np.testing.assert_allclose(out[f"NDCG@{k}"], M.ndcg_at_k(HAND_TOP3, HAND_TARGETS, k))
        np.testing.assert_allclose(out[f"PSP@{k}"], M.psp_at_k(HAND_TOP3, HAND_TARGETS, k, HAND_WEIGHTS))
    assert "PSP@1" not in M.ranking_metrics(HAND_TOP3, HAND_TARGETS, ks=(1,))


def test_k_capping_many_and_few_targets():
    # user 0 has 5 targets > k=2: a perfect top-2 gives HR = NDCG = PSP = 1 (normalised by 2 not 5)
    # user 1 has 1 target < k=4: finding it anywhere in the top-4 gives HR = 1
    targets = csr_from_sets([{0, 1, 2, 3, 4}, {7}], 8)
    top = np.array([[3, 1, 0, 2], [0, 1, 2, 7]])
    w = np.ones(8)
    np.testing.assert_allclose(M.hit_rate_at_k(top, targets, 2), [1.0, 0.0])
    np.testing.assert_allclose(M.ndcg_at_k(top, targets, 2), [1.0, 0.0])
    # PSP with unit weights, user 0, k=2: (2 hits / min(5,2)) / (2 largest weights = 2) = 0.5 = 1/c
    np.testing.assert_allclose(M.psp_at_k(top, targets, 2, w), [0.5, 0.0])
    np.testing.assert_allclose(M.hit_rate_at_k(top, targets, 4), [1.0, 1.0])
    # user 1, k=4: DCG = 1/log2(5), IDCG over min(1,4)=1 rank = 1
    np.testing.assert_allclose(M.ndcg_at_k(top, targets, 4), [1.0, 1 / math.log2(5)])
    # PSP with unit weights, user 1: (1 / min(1,4)) / 1 = 1 ; user 0: (4/4) / 4 = 0.25 (denominator not / c)
    np.testing.assert_allclose(M.psp_at_k(top, targets, 4, w), [0.25, 1.0])


def test_no_targets_give_zero():
    targets = sp.csr_matrix((4, 5), dtype=np.float32)
    top = np.tile(np.arange(3), (4, 1))
    for fn in (M.hit_rate_at_k, M.ndcg_at_k):
        np.testing.assert_array_equal(fn(top, targets, 3), np.zeros(4))
    np.testing.assert_array_equal(M.psp_at_k(top, targets, 3, np.ones(5)), np.zeros(4))


def test_duplicates_and_explicit_zeros_in_targets():
    # a duplicated (0, 1) pair counts once; an explicit zero at (0, 2) is not a target
    targets = sp.csr_matrix((np.array([1.0, 1.0, 0.0]), (np.array([0, 0, 0]), np.array([1, 1, 2]))), shape=(1, 4))
    top = np.array([[2, 1]])
    np.testing.assert_allclose(M.hit_rate_at_k(top, targets, 2), [1.0])  # 1 hit / min(1, 2)


# --------------------------------------------------------------------------------------------------------
# top_k_items
# --------------------------------------------------------------------------------------------------------
def test_top_k_order_and_tie_breaking():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    # row 0: three items tie at 3.0 (indices 1, 2, 4) -> lower index first; then item 3 (2.0), item 0 (1.0)
    np.testing.assert_array_equal(M.top_k_items(scores, 2), [[1, 2], [0, 1]])
    np.testing.assert_array_equal(M.top_k_items(scores, 4), [[1, 2, 4, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(M.top_k_items(scores, 5), [[1, 2, 4, 3, 0], [0, 1, 2, 3, 4]])


def test_top_k_matches_stable_full_sort_on_random_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 37)).astype(np.float32)  # heavy ties
    exclude = sp.random(200, 37, density=0.3, format="csr", random_state=1)
    for k in (1, 5, 10, 36, 37):
        got = M.top_k_items(scores, k, exclude=exclude)
        masked = np.where(exclude.toarray() != 0, -np.inf, scores)
        expected = np.argsort(-masked, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(got, expected)


def test_top_k_excludes_items_and_does_not_mutate():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((50, 30))
    original = scores.copy()
    exclude = sp.random(50, 30, density=0.4, format="csr", random_state=2)
    top = M.top_k_items(scores, 10, exclude=exclude)
    dense_exclude = exclude.toarray() != 0
    assert not dense_exclude[np.arange(50)[:, None], top].any()
    np.testing.assert_array_equal(scores, original)
    # in place: excluded entries become -inf in the caller's array, same result
    top_inplace = M.top_k_items(scores, 10, exclude=exclude, inplace=True)
    np.testing.assert_array_equal(top, top_inplace)
    assert np.all(np.isneginf(scores[dense_exclude]))


def test_top_k_excluded_last_even_against_minus_inf_scores():
    # items 0 and 1 are excluded; item 2 has score -inf but is not excluded -> it comes before excluded items
    scores = np.array([[5.0, 4.0, -np.inf, 1.0]])
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 0]]))
    np.testing.assert_array_equal(M.top_k_items(scores, 3, exclude=exclude), [[3, 2, 0]])


def test_top_k_k_larger_than_items_and_metrics_accept_it():
    scores = np.array([[0.1, 0.9, 0.5]])
    top = M.top_k_items(scores, 10)
    np.testing.assert_array_equal(top, [[1, 2, 0]])
    targets = csr_from_sets([{0}], 3)
    np.testing.assert_allclose(M.hit_rate_at_k(top, targets, 10), [1.0])
    np.testing.assert_allclose(M.ndcg_at_k(top, targets, 10), [1 / math.log2(4)])


def test_top_k_errors():
    with pytest.raises(ParameterError, match="k must be a positive integer"):
        M.top_k_items(np.zeros((2, 3)), 0)
    with pytest.raises(ParameterError, match="2-D"):
        M.top_k_items(np.zeros(3), 1)
    with pytest.raises(ParameterError, match="shape"):
        M.top_k_items(np.zeros((2, 3)), 1, exclude=sp.csr_matrix((2, 4)))
    with pytest.raises(NumericalError, match="NaN"):
        M.top_k_items(np.array([[0.0, np.nan]]), 1)


def test_metric_input_errors():
    with pytest.raises(ParameterError, match="rows"):
        M.hit_rate_at_k(HAND_TOP3[:2], HAND_TARGETS, 3)
    with pytest.raises(ParameterError, match="columns"):
        M.hit_rate_at_k(HAND_TOP3[:, :2], HAND_TARGETS, 3)
    with pytest.raises(ParameterError, match="outside"):
        M.ndcg_at_k(HAND_TOP3 + 10, HAND_TARGETS, 3)
    with pytest.raises(ParameterError, match="scipy.sparse"):
        M.hit_rate_at_k(HAND_TOP3, HAND_TARGETS.toarray(), 3)
    with pytest.raises(ParameterError, match="weights"):
        M.psp_at_k(HAND_TOP3, HAND_TARGETS, 3, np.ones(5))


# --------------------------------------------------------------------------------------------------------
# independent references on random data
# --------------------------------------------------------------------------------------------------------
def reference_hr_psp(top_k, target_sets, k, weights):
    """Plain per-user loop over Python sets (the definition of docs/evaluation.md)."""
    hr, psp = [], []
    for items, targets in zip(top_k, target_sets):
        if not targets:
            hr.append(0.0)
            psp.append(0.0)
            continue
        c = min(len(targets), k)
        hits = [i for i in items[:k] if i in targets]
        hr.append(len(hits) / c)
        user_psp = sum(weights[i] for i in hits) / c
        best = sum(sorted((weights[i] for i in targets), reverse=True)[:c])
        psp.append(user_psp / best)
    return np.array(hr), np.array(psp)


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(42)
    n_users, n_items = 120, 60
    train = sp.random(n_users, n_items, density=0.2, format="csr", random_state=3, dtype=np.float32)
    train.data[:] = 1
    targets = sp.random(n_users, n_items, density=0.08, format="csr", random_state=4, dtype=np.float32)
    targets.data[:] = 1
    keep_rows = np.ones(n_users, dtype=np.float32)
    keep_rows[:10] = 0  # the first 10 users have no targets
    targets = sp.csr_matrix(sp.diags(keep_rows) @ targets)
    targets.eliminate_zeros()
    targets = targets + sp.csr_matrix(  # and user 10 has many (more than k=5)
        (np.ones(12, np.float32), (np.full(12, 10), np.arange(0, 60, 5))), shape=targets.shape
    )
    targets.data[:] = 1
    scores = rng.standard_normal((n_users, n_items))  # continuous: no ties
    return train, targets, scores


def test_hr_psp_match_reference_loop(random_case):
    train, targets, scores = random_case
    weights = M.propensity_weights(train)
    top = M.top_k_items(scores, 20, exclude=train)
    target_sets = [set(targets.indices[targets.indptr[u] : targets.indptr[u + 1]]) for u in range(targets.shape[0])]
    assert any(len(s) == 0 for s in target_sets) and any(len(s) > 5 for s in target_sets)
    for k in (1, 5, 20):
        hr_ref, psp_ref = reference_hr_psp(top, target_sets, k, weights)
        np.testing.assert_allclose(M.hit_rate_at_k(top, targets, k), hr_ref, rtol=1e-12)
        np.testing.assert_allclose(M.psp_at_k(top, targets, k, weights), psp_ref, rtol=1e-12)


def test_ndcg_matches_sklearn(random_case):
    from sklearn.metrics import ndcg_score

    _, targets, scores = random_case
    y_true = targets.toarray()
    top = M.top_k_items(scores, 20)  # no exclusion: sklearn ranks every item
    has_targets = y_true.sum(axis=1) > 0
    for k in (1, 5, 20):
        ours = M.ndcg_at_k(top, targets, k)
        # sklearn's IDCG@k is the DCG of the ideal top-k: with binary gains that is min(|T|, k) ones, like ours
        theirs = np.array([ndcg_score(y_true[[u]], scores[[u]], k=k) for u in np.flatnonzero(has_targets)])
        np.testing.assert_allclose(ours[has_targets], theirs, rtol=1e-10)
        assert np.all(ours[~has_targets] == 0)


# --------------------------------------------------------------------------------------------------------
# propensities
# --------------------------------------------------------------------------------------------------------
def test_propensity_weights_hand_case():
    # 4 train interactions (N = 4); item counts n = [2, 1, 1, 0]
    # C = (ln 4 - 1) * 2.5^0.55 ; w_i = 1 + C * (n_i + 1.5)^-0.55
    # n_i = 1 -> w = 1 + (ln 4 - 1) * (2.5 / 2.5)^0.55 = ln 4 = 1.386294...
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    w = M.propensity_weights(train)
    c = (math.log(4) - 1) * 2.5**0.55
    np.testing.assert_allclose(w, [1 + c * 3.5**-0.55, math.log(4), math.log(4), 1 + c * 1.5**-0.55])
    np.testing.assert_allclose(w, [1.3210317, 1.3862944, 1.3862944, 1.5116055], rtol=1e-7)
    assert w[3] > w[0]  # rarer items weigh more
    with pytest.raises(ParameterError, match="no interactions"):
        M.propensity_weights(sp.csr_matrix((2, 3)))


# --------------------------------------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------------------------------------
def test_pooled_auc_hand_case_with_tie():
    # pos [0.9, 0.5], neg [0.5, 0.1, 0.3]: 0.9 beats all 3 ; 0.5 ties 0.5 (1/2) and beats 0.1, 0.3 -> 2.5
    # AUC = (3 + 2.5) / (2 * 3) = 11/12
    assert M.pooled_auc(np.array([0.9, 0.5]), np.array([0.5, 0.1, 0.3])) == pytest.approx(11 / 12)
    assert M.pooled_auc([1.0], [0.0]) == 1.0
    assert M.pooled_auc([0.0], [1.0]) == 0.0
    assert M.pooled_auc([1.0, 1.0], [1.0]) == 0.5


def test_pooled_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    pos = np.round(rng.normal(0.5, 1.0, 3000), 1)  # rounding creates many ties
    neg = np.round(rng.normal(0.0, 1.0, 5000), 1)
    expected = roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg])
    assert M.pooled_auc(pos, neg) == pytest.approx(expected, rel=1e-12)


def test_pooled_auc_errors():
    with pytest.raises(ParameterError, match="empty"):
        M.pooled_auc([], [1.0])
    with pytest.raises(ParameterError, match="empty"):
        M.pooled_auc([1.0], [])
    with pytest.raises(ParameterError, match="NaN"):
        M.pooled_auc([1.0, np.nan], [0.0])
    with pytest.raises(ParameterError, match="1-D"):
        M.pooled_auc(np.ones((2, 2)), [0.0])


def test_auc_pools_gathers_unmasked_scores():
    scores = np.arange(12, dtype=np.float32).reshape(2, 6)  # score of (u, i) = 6u + i
    targets = csr_from_sets([{1, 4}, {0}], 6)
    negatives = np.array([[2, 3], [5, 1]])
    pos, neg = M.auc_pools(scores, targets, negatives)
    np.testing.assert_array_equal(pos, [1, 4, 6])
    np.testing.assert_array_equal(neg, [2, 3, 11, 7])
    # pos 1 beats none of 2,3,11,7 ; 4 beats 2,3 ; 6 beats 2,3 -> 4 / 12
    assert M.pooled_auc(pos, neg) == pytest.approx(4 / 12)
    with pytest.raises(ParameterError, match="negatives"):
        M.auc_pools(scores, targets, np.array([[2, 3]]))
    with pytest.raises(ParameterError, match="outside"):
        M.auc_pools(scores, targets, np.array([[2, 6], [0, 1]]))


def test_evaluate_rows_masks_the_context_and_scores_each_row():
    from infae_kit.evaluation.protocol import evaluate_rows

    class Fixed:  # scores item i as i: the highest items first
        def predict(self, X):
            return np.tile(np.arange(X.shape[1], dtype=np.float32), (X.shape[0], 1))

    context = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    targets = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))
    m = evaluate_rows(Fixed(), context, targets, np.ones(4), ks=(1,))
    # user 0: item 3 is masked (its context), so item 2 is first: a hit; user 1: item 3 first, target 1 missed
    assert m["HR@1"] == pytest.approx(50.0) and "AUC" not in m
