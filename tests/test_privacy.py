"""Tests of infae_kit.experiments.privacy: the N–S scoreboard, the distillation attack and the attack scenario (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import privacy as P
from infae_kit.experiments import scoreboard as SB
from infae_kit.data import load_dataset
from infae_kit.errors import DataError, ParameterError


def binary(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    data = np.zeros((len(rows), n_items), dtype=np.float32)
    for r, items in enumerate(rows):
        data[r, items] = 1.0
    return sp.csr_matrix(data)


def fingerprinted(n_users=60, n_items=400, extra=4, seed=0) -> sp.csr_matrix:
    """Each user holds item u (held by nobody else) plus a few random shared items from the rest."""
    rng = np.random.default_rng(seed)
    rows = [[u, *rng.choice(np.arange(n_users, n_items), size=extra, replace=False)] for u in range(n_users)]
    return binary(rows, n_items)


@pytest.fixture(scope="module")
def sparse_synthetic() -> sp.csr_matrix:
    return load_dataset("synthetic", n_users=300, n_items=3000, mean_interactions=12, seed=0).all_positives()


def test_rarity_weights_follow_item_support():
    R = binary([[0, 1], [1, 2], [1], [3]], 5)  # supports: 1, 3, 1, 1, 0
    w = SB.item_rarity_weights(R)
    np.testing.assert_allclose(w, [1 / np.log(2), 1 / np.log(4), 1 / np.log(2), 1 / np.log(2), 0.0])


def test_scores_equal_the_definition(sparse_synthetic):
    X = sparse_synthetic
    aux, _ = P.reveal_items(X[:20], 0.5, seed=3)
    w = SB.item_rarity_weights(X)
    S = SB.scoreboard_scores(aux, X)
    A, R = aux.toarray() > 0, X.toarray() > 0
    expected = np.array([[w[A[t] & R[r]].sum() for r in range(R.shape[0])] for t in range(A.shape[0])])
    np.testing.assert_allclose(S, expected, rtol=1e-12)


def test_exact_copy_is_deanonymized():
    X = fingerprinted()
    result = SB.scoreboard_match(X, X)
    np.testing.assert_array_equal(result.matched, np.arange(X.shape[0]))
    assert np.all(result.eccentricity >= SB.PAPER_ECCENTRICITY_THRESHOLD)
    # the same with the published rows shuffled: the truth follows them
    perm = np.random.default_rng(1).permutation(X.shape[0])
    shuffled = SB.scoreboard_match(X, X[perm])
    np.testing.assert_array_equal(shuffled.matched, SB.sample_positions(np.arange(X.shape[0]), perm))
    assert SB.percent_deanonymized(shuffled.matched, SB.sample_positions(np.arange(X.shape[0]), perm)) == 100.0


def test_superset_row_beats_an_exact_copy():
    # N–S's score never penalises items the aux row lacks: a row holding the target's items and more ties or
    # wins, so an "exact copy" is not de-anonymized when such a row exists (documented limitation).
    X = binary([[0, 1, 2], [0, 1, 2, 3], [4], [5], [6], [7]], 8)
    result = SB.scoreboard_match(X[[0]], X)
    assert result.best[0] == 0 and result.best_score[0] == result.second_score[0]
    assert result.matched[0] == -1  # a tie at the top is refused


def test_unique_rare_item_identifies_the_user():
    n_records, target = 20, 7
    rows = [[1, 2 + r] for r in range(n_records)]  # item 1 is held by everyone, 2 + r by row r only
    rows[target].append(0)  # item 0: held by the target only
    R = binary(rows, 2 + n_records)
    aux = binary([[0, 1]], 2 + n_records)  # the attacker knows one rare and one popular item
    result = SB.scoreboard_match(aux, R)
    assert result.matched[0] == target
    # the popular item alone identifies nobody
    assert SB.scoreboard_match(binary([[1]], 2 + n_records), R).matched[0] == -1


def test_identical_users_are_never_matched():
    R = binary([[0, 3, 5]] * 10, 8)
    result = SB.scoreboard_match(R, R)
    np.testing.assert_array_equal(result.matched, -1)
    np.testing.assert_array_equal(result.eccentricity, 0.0)
    assert SB.percent_deanonymized(result.matched, np.arange(10)) == 0.0


def test_eccentricity_threshold_trades_matches_for_safety(sparse_synthetic):
    X = sparse_synthetic
    scenario = P.make_attack_scenario(X, 0.5, seed=0)
    strict = SB.scoreboard_match(scenario.aux, X, phi=3.0)
    loose = SB.scoreboard_match(scenario.aux, X, phi=0.0)
    assert np.all((strict.matched == -1) | (strict.matched == loose.matched))
    assert np.count_nonzero(strict.matched >= 0) <= np.count_nonzero(loose.matched >= 0)
    np.testing.assert_array_equal(SB.scoreboard_match(scenario.aux, X, batch_size=7).matched,
                                  SB.scoreboard_match(scenario.aux, X).matched)


def test_sampling_attack_succeeds_and_noise_lowers_it(sparse_synthetic):
    X = sparse_synthetic
    sample = np.sort(np.random.default_rng(0).choice(X.shape[0], 150, replace=False))  # user-RNS, 50 %
    truth = SB.sample_positions(sample, sample)
    rates = []
    for noise in (0.0, 0.002, 0.01):
        scenario = P.make_attack_scenario(X, 0.9, noise, target_users=sample, seed=0)
        rates.append(SB.percent_deanonymized(SB.scoreboard_match(scenario.aux, X[sample]).matched, truth))
    assert rates[0] >= 75.0  # 81.3 % with these seeds; the rest are refused (ties with overlapping rows)
    assert rates[0] > rates[1] > rates[2]
    # targets that were not published can only be refused or wrongly matched
    absent = np.setdiff1d(np.arange(X.shape[0]), sample)
    scenario = P.make_attack_scenario(X, 0.9, target_users=absent, seed=0)
    matched = SB.scoreboard_match(scenario.aux, X[sample]).matched
    truth_absent = SB.sample_positions(absent, sample)
    assert np.all(truth_absent == -1) and SB.percent_deanonymized(matched, truth_absent) == 0.0
    outcomes = SB.match_outcomes(matched, truth_absent)
    assert outcomes["absent"] == absent.shape[0] and outcomes["correct"] == 0


def test_match_outcomes_counts():
    out = SB.match_outcomes([0, 1, -1, 2, -1], [0, 2, 1, -1, -1])
    assert out == {"targets": 5, "correct": 1, "wrong": 2, "refused": 2, "absent": 2}
    assert SB.percent_deanonymized([0, 1, -1, 2, -1], [0, 2, 1, -1, -1]) == 20.0


# -- distillation case ---------------------------------------------------------------------------------------


def two_blocks() -> sp.csr_matrix:
    """Users 0–4 hold items 0–4, users 5–9 hold items 5–9 (a block-diagonal, trivially predictable dataset)."""
    return binary([list(range(5))] * 5 + [list(range(5, 10))] * 5, 10)


def test_exact_missing_set_rule():
    aux = binary([[0], [0], [0], [0]], 4)
    true = binary([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0]], 4)
    scores = np.array([[9, 5, 4, 1], [9, 5, 1, 4], [9, 5, 4, 4], [9, 1, 1, 1]], dtype=float)
    out = P.exact_missing_set_recovered(scores, aux, true)
    np.testing.assert_array_equal(out.success, [True, False, False, False])  # row 3: a tie at the boundary
    np.testing.assert_array_equal(out.n_missing, [2, 2, 2, 0])
    np.testing.assert_array_equal(out.evaluable, [True, True, True, False])
    assert out.percent == pytest.approx(100 / 3)
    # graded: share of the missing items in the top-m (row 1 predicts {1, 3}; row 2's tie goes to the lower index)
    np.testing.assert_array_equal(out.recovered, [1.0, 0.5, 1.0, np.nan])


def test_distillation_attack_recovers_a_row_the_summary_contains():
    X = two_blocks()
    aux = binary([[0, 1, 2, 3], [5, 6, 7, 8]], 10)
    truth = X[[0, 5]]
    out = P.distillation_attack(X, aux, truth, lam=1.0)
    np.testing.assert_array_equal(out.success, [True, True])
    assert out.percent == 100.0
    # a soft summary with the same rows at 0.9 works as well
    assert P.distillation_attack(sp.csr_matrix(X * 0.9), aux, truth, lam=1.0).percent == 100.0


def test_distillation_attack_fails_on_an_unrelated_summary():
    X = two_blocks()
    unrelated = binary([list(range(10, 15))] * 3 + [list(range(15, 20))] * 3, 20)
    aux = binary([[0, 1, 2, 3]], 20)
    truth = binary([list(range(5))], 20)
    out = P.distillation_attack(unrelated, aux, truth, lam=1.0)
    assert not out.success[0] and out.percent == 0.0
    other_block = sp.csr_matrix(X[5:])  # the summary only knows the other block
    out = P.distillation_attack(other_block, binary([[0, 1, 2, 3]], 10), X[[0]], lam=1.0)
    assert out.percent == 0.0


# -- scenario ------------------------------------------------------------------------------------------------


def test_reveal_items_partitions_each_row(sparse_synthetic):
    X = sparse_synthetic
    revealed, hidden = P.reveal_items(X, 0.7, seed=5)
    assert (revealed.multiply(hidden)).nnz == 0
    assert ((revealed + hidden) != X).nnz == 0
    n = np.diff(X.indptr)
    np.testing.assert_array_equal(np.diff(revealed.indptr), np.maximum(1, np.floor(0.7 * n + 1e-9)))
    again, _ = P.reveal_items(X, 0.7, seed=5)
    assert (again != revealed).nnz == 0
    other, _ = P.reveal_items(X, 0.7, seed=6)
    assert (other != revealed).nnz > 0
    full, nothing = P.reveal_items(X, 1.0, seed=0)
    assert (full != X).nnz == 0 and nothing.nnz == 0


def test_scenario_noise_flips_exactly_the_asked_number_per_user(sparse_synthetic):
    """A numeric noise is the paper's model (infae_kit.experiments.noise.add_noise) applied to the revealed items."""
    X = sparse_synthetic[:50]
    scenario = P.make_attack_scenario(X, 0.9, 0.01, seed=0)
    k = round(0.01 * X.shape[1])
    changed = abs(scenario.aux - scenario.revealed)
    np.testing.assert_array_equal(np.diff(sp.csr_matrix(changed).indptr), k)
    assert set(np.unique(scenario.aux.data)) == {1.0}
    clean = P.make_attack_scenario(X, 0.9, 0.0, seed=0)
    assert (clean.aux != clean.revealed).nnz == 0


def test_scenario_uses_a_callable_noise(sparse_synthetic):
    X = sparse_synthetic
    drop_all = lambda M: sp.csr_matrix(M.shape, dtype=np.float32)  # noqa: E731
    scenario = P.make_attack_scenario(X, 0.9, drop_all, target_users=[3, 4], seed=0)
    assert scenario.aux.nnz == 0 and scenario.revealed.nnz > 0
    np.testing.assert_array_equal(scenario.target_users, [3, 4])
    assert (scenario.true_rows != X[[3, 4]]).nnz == 0


def test_bad_parameters_are_refused(sparse_synthetic):
    X = sparse_synthetic
    with pytest.raises(ParameterError, match="phi"):
        SB.scoreboard_match(X, X, phi=-0.5)
    for fraction in (0.0, -0.1, 1.5, 90):
        with pytest.raises(ParameterError, match="fraction"):
            P.reveal_items(X, fraction)
    with pytest.raises(ParameterError, match="divided by 100"):
        P.make_attack_scenario(X, 90)
    with pytest.raises(ParameterError, match="noise"):
        P.make_attack_scenario(X, 0.9, noise=1.5)
    with pytest.raises(ParameterError, match="same item index"):
        SB.scoreboard_match(X, X[:, :10])
    with pytest.raises(DataError, match="at least 2 public rows"):
        SB.scoreboard_match(X, X[:1])
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        P.distillation_attack(X[:5] * 2, X[:2], X[:2], lam=1.0)
    with pytest.raises(ParameterError, match="target_users"):
        P.make_attack_scenario(X, 0.9, target_users=[X.shape[0]])
    with pytest.raises(ParameterError, match="one per target"):
        SB.percent_deanonymized([0, 1], [0])


# -- curves --------------------------------------------------------------------------------------------------


def test_draw_targets_picks_eligible_users_reproducibly(sparse_synthetic):
    X = sparse_synthetic
    counts = np.diff(X.indptr)
    targets = P.draw_targets(X, 50, min_items=10, seed=3)
    assert targets.shape == (50,) and np.all(np.diff(targets) > 0) and np.all(counts[targets] >= 10)
    np.testing.assert_array_equal(targets, P.draw_targets(X, 50, min_items=10, seed=3))
    assert not np.array_equal(targets, P.draw_targets(X, 50, min_items=10, seed=4))
    stream = np.random.default_rng(3)  # a Generator is drawn from: the first draw equals seed=3, the next differs
    np.testing.assert_array_equal(P.draw_targets(X, 50, min_items=10, seed=stream), targets)
    assert not np.array_equal(P.draw_targets(X, 50, min_items=10, seed=stream), targets)
    among = np.arange(0, X.shape[0], 2)
    assert set(P.draw_targets(X, 1000, among=among, min_items=1)) == set(among[counts[among] >= 1])
    one_item = binary([[0], [1, 2], [3]], 4)
    np.testing.assert_array_equal(P.draw_targets(one_item, 5), [1])  # default min_items=2
    with pytest.raises(DataError, match="no eligible target"):
        P.draw_targets(one_item, 5, among=[0, 2])
    with pytest.raises(ParameterError, match="n_targets"):
        P.draw_targets(X, 0)
    with pytest.raises(ParameterError, match="among"):
        P.draw_targets(X, 5, among=[X.shape[0]])


def test_prediction_attack_equals_distillation_attack():
    from infae_kit.models.infinite_ae import InfiniteAE

    X = two_blocks()
    aux = binary([[0, 1, 2, 3], [5, 6], [1, 2]], 10)
    truth = X[[0, 5, 1]]
    direct = P.distillation_attack(X, aux, truth, lam=1.0)
    fitted = P.prediction_attack(InfiniteAE(1.0).fit(X), aux, truth, batch_size=2)
    np.testing.assert_array_equal(direct.success, fitted.success)
    np.testing.assert_array_equal(direct.n_missing, fitted.n_missing)
    assert direct.percent == fitted.percent
    np.testing.assert_array_equal(direct.recovered, fitted.recovered)
    with pytest.raises(ParameterError, match="same shape"):
        P.prediction_attack(InfiniteAE(1.0).fit(X), aux, truth[:2])


def test_attack_point_matching_is_the_scoreboard(sparse_synthetic):
    X = sparse_synthetic
    sample = np.sort(np.random.default_rng(0).choice(X.shape[0], 150, replace=False))
    targets = P.draw_targets(X, 60, among=sample, seed=1)
    release = P.SampleRelease("user-rns", X[sample], sample, targets)
    row = P.attack_point(X, release, 0.9, 0.0, seed=5)
    scenario = P.make_attack_scenario(X, 0.9, 0.0, target_users=targets, seed=5)
    matched = SB.scoreboard_match(scenario.aux, X[sample]).matched
    truth = SB.sample_positions(targets, sample)
    assert row["attack"] == "matching" and row["release"] == "user-rns"
    assert row["percent"] == SB.percent_deanonymized(matched, truth) >= 75.0
    assert {k: row[k] for k in ("targets", "correct", "wrong", "refused", "absent")} == SB.match_outcomes(matched, truth)
    assert row["absent"] == 0 and row["fraction_revealed"] == 0.9 and row["noise"] == 0.0


def test_attack_point_prediction_and_sampled_data():
    from infae_kit.models.infinite_ae import InfiniteAE
    from infae_kit.experiments.sampling import sample

    X = two_blocks()
    model = P.ModelRelease("summary", InfiniteAE(1.0).fit(X), np.arange(10))
    row = P.attack_point(X, model, 0.8, seed=0)  # 4 of 5 items revealed: the block's fifth item is predicted
    assert row == {"release": "summary", "fraction_revealed": 0.8, "noise": 0.0, "attack": "prediction",
                   "percent": 100.0, "targets": 10, "correct": 10, "evaluable": 10, "mean_missing": 1.0,
                   "recovered_percent": 100.0}
    s = sample("user-rns", fingerprinted(), n_users=20, seed=0)
    release = P.SampleRelease.from_sample("user-rns", s, s.users)
    assert (release.rows != fingerprinted()[s.users]).nnz == 0
    assert P.attack_point(fingerprinted(), release, 1.0)["percent"] == 100.0  # each row holds a unique item
    with pytest.raises(ParameterError, match="SampleRelease or a ModelRelease"):
        P.attack_point(X, "summary", 0.8)


def test_attack_sweep_rows_and_common_random_numbers(sparse_synthetic):
    X = sparse_synthetic
    sample = np.sort(np.random.default_rng(0).choice(X.shape[0], 150, replace=False))
    targets = P.draw_targets(X, 80, among=sample, seed=1)
    releases = [P.SampleRelease("a", X[sample], sample, targets),
                P.SampleRelease("b", X[sample[::-1]], sample[::-1], targets)]  # same rows, other order
    settings = [(0.9, 0.0), (0.9, 0.002), (0.9, 0.01), (0.5, 0.0)]
    rows = P.attack_sweep(X, releases, settings, seed=2)
    assert [(r["fraction_revealed"], r["noise"], r["release"]) for r in rows] == [
        (f, x, name) for f, x in settings for name in ("a", "b")]
    assert rows[0] == P.attack_point(X, releases[0], 0.9, 0.0, seed=2)
    for a, b in zip(rows[::2], rows[1::2]):  # the order of the published rows changes nothing
        assert a["percent"] == b["percent"] and a["correct"] == b["correct"]
    noise_curve = [r["percent"] for r in rows[:6:2]]
    assert noise_curve[0] > noise_curve[1] > noise_curve[2]
    with pytest.raises(ParameterError, match="distinct names"):
        P.attack_sweep(X, [releases[0], releases[0]], settings)
    with pytest.raises(ParameterError, match="pair"):
        P.attack_sweep(X, releases, [0.9])
    with pytest.raises(ParameterError, match="divided by 100"):
        P.attack_sweep(X, releases, [(90, 0)])
    with pytest.raises(ParameterError, match="settings is empty"):
        P.attack_sweep(X, releases, [])
