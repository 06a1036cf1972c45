"""How anonymous is a published dataset? The attacker model of the paper's Appendix B.6.

The attacker knows part of a target user's history, with identity (the *auxiliary* information ``aux``, the
paper's D′: a revealed fraction of the user's items, possibly with noise), and tries to recover the rest from
what was published.

* **Sampling case** (:func:`scoreboard_match`): a sample of the real rows of D is public, without identities.
  The attacker matches each aux row to a public row with the robust de-anonymization *Scoreboard-RH* of
  Narayanan & Shmatikov (2008), restricted to binary data:

  - score(aux, r) = Σ_{i ∈ supp(aux) ∩ supp(r)} wt(i), with the rarity weight wt(i) = 1 / log |supp(i)|, where
    supp(i) is the set of public rows that hold item i (rare items identify people, popular ones do not);
  - eccentricity ecc = (max − max₂) / σ, the gap between the best and second-best score in units of the
    standard deviation σ of all the target's scores; the best row is accepted as the match only when
    ecc ≥ φ (N–S use φ = 1.5), otherwise the attacker says "no match" (−1).

  All scores come from one weighted sparse product, ``(aux · diag(wt)) · recordsᵀ``, in batches of targets.

* **Distillation case** (:func:`distillation_attack`): only a DISTILL-CF summary D̃ is public. There is nothing
  to match, so the attacker *predicts*: it fits ∞-AE on D̃ and, for each target, scores the items given the
  revealed ones. Told how many items m are missing, it predicts the top-m unrevealed items; the target is
  de-anonymized when that set equals the true missing set exactly.

* **Scenario** (:func:`make_attack_scenario`): for each target user of D, reveal ⌊x·|items of the user|⌋ of
  the user's items (at least one; seeded), then optionally flip noise into the revealed rows. The paper's
  noise "randomly flips x % of the total items for each user"; a minimal local version of it is here
  (:func:`infae_kit.experiments.noise.add_noise`, used when ``noise`` is a number), and any other noise model can be passed as a
  callable.

* **Curves** (:func:`attack_sweep`, one :func:`attack_point` per release and setting): a release is either a
  :class:`SampleRelease` (published real rows, attacked by matching) or a :class:`ModelRelease` (a model fitted
  on what was published, attacked by prediction, e.g. ∞-AE on a DISTILL-CF summary), each with its target
  users (:func:`draw_targets`). Fig. 8 is a sweep over the noise at 90 % revealed, Fig. 9 over the fraction
  revealed at 0 % noise.

References:
    Arvind Narayanan and Vitaly Shmatikov. Robust de-anonymization of large sparse datasets. IEEE S&P 2008.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, as_rng, binary_interactions, check_fraction
from infae_kit.errors import DataError, ParameterError
from infae_kit.experiments.noise import add_noise
from infae_kit.experiments.scoreboard import (
    DEFAULT_BATCH_TARGETS,
    PAPER_ECCENTRICITY_THRESHOLD,
    check_batch,
    check_same_items,
    match_outcomes,
    percent_deanonymized,
    sample_positions,
    scoreboard_match,
)

if TYPE_CHECKING:
    from infae_kit.experiments.sampling import SampledData

__all__ = [
    "DistillationAttack",
    "exact_missing_set_recovered",
    "distillation_attack",
    "prediction_attack",
    "reveal_items",
    "AttackScenario",
    "make_attack_scenario",
    "draw_targets",
    "SampleRelease",
    "ModelRelease",
    "attack_point",
    "attack_sweep",
]


@dataclass
class DistillationAttack:
    """Outcome of :func:`distillation_attack` / :func:`exact_missing_set_recovered`, one entry per target.

    Attributes:
        success: ``(n_targets,)`` bool, the predicted top-m set equals the true missing set exactly.
        n_missing: ``(n_targets,)`` m, number of the target's true items absent from its aux row.
        evaluable: ``n_missing > 0`` (a target with nothing missing cannot be de-anonymized by prediction).
        percent: 100 · #success / #evaluable.
        recovered: ``(n_targets,)`` graded version of ``success``: the share of the missing items that are in the
            top-m prediction (ties broken by the lower item index), NaN where nothing is missing. An attack that
            never recovers a whole set can still recover most of it.
    """

    success: np.ndarray
    n_missing: np.ndarray
    evaluable: np.ndarray
    percent: float
    recovered: np.ndarray | None = None


def exact_missing_set_recovered(scores: np.ndarray, aux: MatrixLike, true_rows: MatrixLike) -> DistillationAttack:
    """Did the top-m unrevealed items equal the true missing set, for each target?

    missing(u) = supp(true_rows[u]) \\ supp(aux[u]), m = |missing(u)|. The prediction is the m best-scored items
    outside supp(aux[u]). It equals missing(u) iff every missing item scores strictly higher than every other
    unrevealed item; a tie across that boundary counts as a failure (the attacker cannot tell which to pick).

    Args:
        scores: ``(n_targets, n_items)`` the attacker's scores (e.g. ∞-AE on the public summary).
        aux: ``(n_targets, n_items)`` revealed (possibly noisy) items per target.
        true_rows: ``(n_targets, n_items)`` each target's true row in D.

    Returns:
        :class:`DistillationAttack` (``percent`` is NaN when no target has a missing item).
    """
    S = np.asarray(scores, dtype=np.float64)
    A = binary_interactions(aux, "aux")
    T = binary_interactions(true_rows, "true_rows")
    if S.ndim != 2 or S.shape != A.shape or A.shape != T.shape:
        raise ParameterError(
            f"scores {np.shape(scores)}, aux {A.shape} and true_rows {T.shape} must all be (n_targets, n_items)."
        )
    if np.isnan(S).any():
        raise ParameterError("scores hold NaN; the model that produced them failed.")
    revealed = A.toarray() > 0
    missing = (T.toarray() > 0) & ~revealed
    others = ~revealed & ~missing
    n_missing = missing.sum(axis=1)
    lowest_missing = np.where(missing, S, np.inf).min(axis=1)
    highest_other = np.where(others, S, -np.inf).max(axis=1)
    evaluable = n_missing > 0
    success = evaluable & (lowest_missing > highest_other)
    n_eval = int(evaluable.sum())
    percent = 100.0 * float(success.sum()) / n_eval if n_eval else float("nan")
    # rank of every item among the unrevealed ones (revealed items last), best first, ties by item index
    order = np.argsort(np.where(revealed, np.inf, -S), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(S.shape[1]), S.shape), axis=1)
    hits = (missing & (rank < n_missing[:, None])).sum(axis=1)
    recovered = np.divide(hits, n_missing, out=np.full(S.shape[0], np.nan), where=evaluable)
    return DistillationAttack(success=success, n_missing=n_missing.astype(np.int64), evaluable=evaluable,
                              percent=percent, recovered=recovered)


def distillation_attack(
    summary: MatrixLike,
    aux: MatrixLike,
    true_rows: MatrixLike,
    *,
    lam: float,
    batch_size: int = DEFAULT_BATCH_TARGETS,
    **model_options: Any,
) -> DistillationAttack:
    """The attacker of B.6 when only a DISTILL-CF summary D̃ is public.

    Fits ∞-AE with ridge λ on D̃ (``InfiniteAE(lam, **model_options).fit(summary)``), scores every target's
    revealed row, and checks with :func:`exact_missing_set_recovered` whether the top-m unrevealed items are
    exactly the target's missing items (m is given to the attacker, as in the paper).

    Args:
        summary: ``(μ, n_items)`` the public summary (binary or in [0, 1], e.g. ``DistillResult.best_support``).
        aux: ``(n_targets, n_items)`` revealed (possibly noisy) items per target.
        true_rows: ``(n_targets, n_items)`` the targets' true rows in D.
        lam: ∞-AE's λ (e.g. ``DistillResult.best_lambda``).
        batch_size: targets scored at once.
        **model_options: passed to :class:`~infae_kit.models.infinite_ae.InfiniteAE` (``depth``, ``dtype``, ...).

    Returns:
        :class:`DistillationAttack`.
    """
    from infae_kit.models.infinite_ae import InfiniteAE

    check_batch(batch_size)
    if sp.issparse(summary):
        summary = sp.csr_matrix(summary)
        values = summary.data
    else:
        summary = np.asarray(summary)
        values = summary
    if summary.ndim != 2 or summary.shape[0] == 0:
        raise ParameterError(f"summary must be a non-empty users × items matrix, got shape {summary.shape}.")
    if np.size(values) and (not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1):
        raise ParameterError("summary must hold values in [0, 1] (binary or a soft DISTILL-CF support).")
    A = binary_interactions(aux, "aux")
    T = binary_interactions(true_rows, "true_rows")
    if A.shape != T.shape:
        raise ParameterError(f"aux {A.shape} and true_rows {T.shape} must have the same shape (n_targets, n_items).")
    check_same_items(A, sp.csr_matrix((1, summary.shape[1])), names=("aux", "summary"))
    model = InfiniteAE(lam, **model_options).fit(summary)
    return prediction_attack(model, A, T, batch_size=batch_size)


def prediction_attack(model: Any, aux: MatrixLike, true_rows: MatrixLike, *,
                      batch_size: int = DEFAULT_BATCH_TARGETS) -> DistillationAttack:
    """The prediction attack with an already fitted model: top-m unrevealed items against the true missing set.

    The model is fitted once and reused for every curve point (:func:`attack_point`); :func:`distillation_attack`
    is this function after fitting ∞-AE on a summary.

    Args:
        model: anything with ``predict(X) -> (n, n_items) scores`` (e.g. a fitted
            :class:`~infae_kit.models.infinite_ae.InfiniteAE`).
        aux: ``(n_targets, n_items)`` revealed (possibly noisy) items per target, the model's context.
        true_rows: ``(n_targets, n_items)`` the targets' true rows in D.
        batch_size: targets scored at once.

    Returns:
        :class:`DistillationAttack` (:func:`exact_missing_set_recovered` per target).
    """
    batch_size = check_batch(batch_size)
    A = binary_interactions(aux, "aux")
    T = binary_interactions(true_rows, "true_rows")
    if A.shape != T.shape:
        raise ParameterError(f"aux {A.shape} and true_rows {T.shape} must have the same shape (n_targets, n_items).")
    parts = []
    for start in range(0, A.shape[0], batch_size):
        rows = slice(start, min(start + batch_size, A.shape[0]))
        parts.append(exact_missing_set_recovered(model.predict(A[rows]), A[rows], T[rows]))
    success = np.concatenate([p.success for p in parts]) if parts else np.zeros(0, bool)
    n_missing = np.concatenate([p.n_missing for p in parts]) if parts else np.zeros(0, np.int64)
    recovered = np.concatenate([p.recovered for p in parts]) if parts else np.zeros(0)
    evaluable = n_missing > 0
    n_eval = int(evaluable.sum())
    percent = 100.0 * float(success.sum()) / n_eval if n_eval else float("nan")
    return DistillationAttack(success=success, n_missing=n_missing, evaluable=evaluable, percent=percent,
                              recovered=recovered)


# -- building the scenario ---------------------------------------------------------------------------------


def reveal_items(X: MatrixLike, fraction: float, seed: int | np.random.Generator = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each user's items into a revealed part and a hidden part, at random (seeded).

    A user with n items reveals k = ⌊fraction · n⌋ of them, at least one (so with fraction < 1 every user with
    two or more items keeps at least one hidden item), chosen uniformly without replacement.

    Args:
        X: ``(n_users, n_items)`` the users' true rows (binary).
        fraction: fraction revealed, in (0, 1] (0.9 = 90 % revealed).
        seed: int seed or ``np.random.Generator``.

    Returns:
        ``(revealed, hidden)``, two binary CSR matrices of X's shape that partition X's entries.
    """
    fraction = check_fraction(fraction, "fraction", allow_zero=False)
    X = binary_interactions(X, "X")
    rng = as_rng(seed)
    counts = np.diff(X.indptr)
    row_of = np.repeat(np.arange(X.shape[0]), counts)
    keys = rng.random(X.nnz)
    order = np.lexsort((keys, row_of))  # by row, random within the row
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - np.repeat(X.indptr[:-1], counts)
    k = np.maximum(1, np.floor(fraction * counts + 1e-9).astype(np.int64))
    keep = rank < k[row_of]
    revealed = sp.csr_matrix((X.data[keep], (row_of[keep], X.indices[keep])), shape=X.shape, dtype=np.float32)
    hidden = sp.csr_matrix((X.data[~keep], (row_of[~keep], X.indices[~keep])), shape=X.shape, dtype=np.float32)
    revealed.sort_indices()
    hidden.sort_indices()
    return revealed, hidden


@dataclass
class AttackScenario:
    """The attacker's view of the target users (D′) and the truth to score the attack against.

    Attributes:
        target_users: ``(n_targets,)`` row indices in D of the attacked users.
        true_rows: ``(n_targets, n_items)`` their true rows in D.
        revealed: the revealed part of each true row, before noise.
        aux: what the attacker holds: ``revealed`` after noise (D′).
        fraction_revealed: the fraction revealed per user.
        noise: the noise fraction, or the callable's name.
        seed: the seed used.
    """

    target_users: np.ndarray
    true_rows: sp.csr_matrix
    revealed: sp.csr_matrix
    aux: sp.csr_matrix
    fraction_revealed: float
    noise: float | str
    seed: int | None


def make_attack_scenario(
    X: MatrixLike,
    fraction_revealed: float,
    noise: float | Callable[[sp.csr_matrix], sp.csr_matrix] = 0.0,
    *,
    target_users: Sequence[int] | np.ndarray | None = None,
    seed: int = 0,
) -> AttackScenario:
    """D′ for the attack: each target reveals a fraction of its items, then noise is flipped in.

    Args:
        X: ``(n_users, n_items)`` D, the users' true rows (binary).
        fraction_revealed: fraction of each target's items revealed, in (0, 1] (:func:`reveal_items`).
        noise: a fraction in [0, 1] of *all* items flipped per user, the paper's model
            (:func:`infae_kit.experiments.noise.add_noise`), or a callable ``noise(revealed_csr) -> noisy_csr``.
        target_users: rows of D to attack (default: all users with at least one item).
        seed: seeds the reveal and the numeric noise (two independent streams).

    Returns:
        :class:`AttackScenario`.
    """
    X = binary_interactions(X, "X")
    if target_users is None:
        targets = np.flatnonzero(np.diff(X.indptr) > 0)
    else:
        targets = np.asarray(target_users, dtype=np.int64).ravel()
        if targets.size and (targets.min() < 0 or targets.max() >= X.shape[0]):
            raise ParameterError(
                f"target_users must be row indices in [0, {X.shape[0]}); got {targets.min()}..{targets.max()}."
            )
    if targets.size == 0:
        raise DataError("no target user: X has no user with an item (or target_users is empty).")
    true_rows = X[targets]
    reveal_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    revealed, _ = reveal_items(true_rows, fraction_revealed, reveal_rng)
    if callable(noise):
        aux = binary_interactions(noise(revealed), "noise(revealed)")
        if aux.shape != revealed.shape:
            raise ParameterError(f"the noise callable returned shape {aux.shape}; expected {revealed.shape}.")
        noise_label: float | str = getattr(noise, "__name__", repr(noise))
    else:
        aux = add_noise(revealed, 100.0 * check_fraction(noise, "noise", allow_zero=True),
                        seed=int(noise_rng.integers(2**62)))
        noise_label = float(noise)
    return AttackScenario(
        target_users=targets, true_rows=true_rows, revealed=revealed, aux=aux,
        fraction_revealed=float(fraction_revealed), noise=noise_label, seed=seed,
    )


# -- curves: one point per (release, fraction revealed, noise) ---------------------------------------------


def draw_targets(X: MatrixLike, n_targets: int, *, among: Sequence[int] | np.ndarray | None = None,
                 min_items: int = 2, seed: int | np.random.Generator = 0) -> np.ndarray:
    """The users to attack: up to ``n_targets`` rows of D drawn at random among eligible users (seeded).

    A user is eligible when it is in ``among`` (default: every row of D) and holds at least ``min_items`` items
    in D. With the default of 2, every target keeps at least one hidden item at any revealed fraction < 1, so
    the prediction attack always has a missing set to recover (a user with one item reveals it and hides
    nothing).

    Args:
        X: ``(n_users, n_items)`` D (binary).
        n_targets: how many to draw; all eligible users when fewer are eligible.
        among: candidate row indices of D (e.g. the users a sample published); default all rows.
        min_items: fewest items in D a target must hold (≥ 1).
        seed: int seed of ``numpy.random.default_rng``, or a ``Generator`` (drawn from, so successive calls differ).

    Returns:
        ``(k,)`` int64 sorted distinct row indices, ``k = min(n_targets, eligible)``.

    Raises:
        ParameterError: bad ``n_targets``/``min_items``, ``among`` outside D's rows.
        DataError: no eligible user.
    """
    if not isinstance(n_targets, (int, np.integer)) or isinstance(n_targets, bool) or n_targets < 1:
        raise ParameterError(f"n_targets must be a positive integer, got {n_targets!r}.")
    if not isinstance(min_items, (int, np.integer)) or isinstance(min_items, bool) or min_items < 1:
        raise ParameterError(f"min_items must be an integer >= 1, got {min_items!r}.")
    X = binary_interactions(X, "X")
    candidates = np.arange(X.shape[0]) if among is None else np.unique(np.asarray(among, dtype=np.int64).ravel())
    if candidates.size and (candidates.min() < 0 or candidates.max() >= X.shape[0]):
        raise ParameterError(f"among must hold row indices of X in [0, {X.shape[0]}).")
    eligible = candidates[np.diff(X.indptr)[candidates] >= min_items]
    if eligible.size == 0:
        raise DataError(f"no eligible target: none of the {candidates.size} candidate users holds {min_items}+ items.")
    k = min(int(n_targets), eligible.size)
    return np.sort(as_rng(seed).choice(eligible, size=k, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class SampleRelease:
    """The sampling case: real rows of D are published (without identities); the attacker *matches*.

    Attributes:
        name: the curve's label (e.g. the sampler's name).
        rows: ``(n_records, n_items)`` the published rows, in published order.
        users: ``(n_records,)`` row index in D of each published row (the ground truth of a match).
        targets: ``(n_targets,)`` rows of D attacked (usually drawn among ``users``, :func:`draw_targets`).
    """

    name: str
    rows: sp.csr_matrix
    users: np.ndarray
    targets: np.ndarray

    @classmethod
    def from_sample(cls, name: str, sampled: SampledData, targets: Sequence[int] | np.ndarray) -> "SampleRelease":
        """From a :class:`~infae_kit.experiments.sampling.SampledData` (its ``rows()`` and ``users``)."""
        return cls(name, sp.csr_matrix(sampled.rows()), np.asarray(sampled.users, dtype=np.int64),
                   np.asarray(targets, dtype=np.int64))


@dataclass(frozen=True)
class ModelRelease:
    """The distillation case: only a model of the release can be used; the attacker *predicts* missing items.

    Attributes:
        name: the curve's label.
        model: fitted, with ``predict(X) -> (n, n_items) scores`` (e.g. ∞-AE fitted on a DISTILL-CF summary).
        targets: ``(n_targets,)`` rows of D attacked.
    """

    name: str
    model: object
    targets: np.ndarray


def attack_point(
    X: MatrixLike,
    release: SampleRelease | ModelRelease,
    fraction_revealed: float,
    noise: float = 0.0,
    *,
    phi: float = PAPER_ECCENTRICITY_THRESHOLD,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_TARGETS,
) -> dict:
    """One point of Fig. 8/9: build D′ for the release's targets, run the release's attack, count successes.

    D′ is :func:`make_attack_scenario` ``(X, fraction_revealed, noise, target_users=release.targets, seed)``. A
    :class:`SampleRelease` is attacked with :func:`scoreboard_match` (success: matched to the target's own
    published row); a :class:`ModelRelease` with :func:`prediction_attack` (success: the top-m unrevealed items
    are exactly the missing ones, m told to the attacker).

    Args:
        X: ``(n_users, n_items)`` D, the true rows (binary).
        release: what was published, with its targets.
        fraction_revealed: fraction of each target's items in D′, in (0, 1].
        noise: fraction of the catalogue flipped in each D′ row, in [0, 1] (0.01 = 1 %).
        phi: eccentricity threshold of the matching attack.
        seed: seed of D′ (reveal and noise).
        batch_size: targets scored at once.

    Returns:
        A flat dict (JSON-ready): ``release``, ``attack`` (``"matching"``/``"prediction"``),
        ``fraction_revealed``, ``noise``, ``percent`` (% de-anonymized), ``targets``, ``correct``; matching adds
        ``wrong``, ``refused``, ``absent`` (:func:`match_outcomes`); prediction adds ``evaluable``,
        ``mean_missing`` (mean m) and ``recovered_percent`` (mean share of the missing items predicted, over
        evaluable targets, :attr:`DistillationAttack.recovered`). Matching's percent is over all targets, prediction's over evaluable ones
        (a target with nothing missing), which are all targets when each holds 2+ items and the fraction < 1.
    """
    if not isinstance(release, (SampleRelease, ModelRelease)):
        raise ParameterError(f"release must be a SampleRelease or a ModelRelease, got {type(release).__name__}.")
    scenario = make_attack_scenario(X, fraction_revealed, noise, target_users=release.targets, seed=seed)
    row: dict = {"release": release.name, "fraction_revealed": float(fraction_revealed), "noise": float(noise)}
    if isinstance(release, SampleRelease):
        matched = scoreboard_match(scenario.aux, release.rows, phi=phi, batch_size=batch_size).matched
        truth = sample_positions(release.targets, release.users)
        outcomes = match_outcomes(matched, truth)
        row.update(attack="matching", percent=percent_deanonymized(matched, truth), **outcomes)
    else:
        result = prediction_attack(release.model, scenario.aux, scenario.true_rows, batch_size=batch_size)
        n_eval = int(result.evaluable.sum())
        row.update(attack="prediction", percent=float(result.percent), targets=int(result.success.shape[0]),
                   correct=int(result.success.sum()), evaluable=n_eval,
                   mean_missing=float(result.n_missing[result.evaluable].mean()) if n_eval else float("nan"),
                   recovered_percent=100.0 * float(np.nanmean(result.recovered)) if n_eval else float("nan"))
    return row


def attack_sweep(
    X: MatrixLike,
    releases: Iterable[SampleRelease | ModelRelease],
    settings: Iterable[tuple[float, float]],
    *,
    phi: float = PAPER_ECCENTRICITY_THRESHOLD,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_TARGETS,
) -> list[dict]:
    """:func:`attack_point` for every release at every ``(fraction_revealed, noise)`` setting.

    Every point uses the same ``seed``: a release's targets reveal the same items at every noise level of a
    given fraction (common random numbers), so a noise curve differs only by the noise.

    Args:
        X: ``(n_users, n_items)`` D.
        releases: iterable of :class:`SampleRelease` / :class:`ModelRelease` (distinct names).
        settings: iterable of ``(fraction_revealed, noise)`` pairs, e.g. ``[(0.9, x) for x in (0, .01, .05)]``
            for Fig. 8 and ``[(f, 0.0) for f in (0.1, …, 0.9)]`` for Fig. 9.
        phi, seed, batch_size: as :func:`attack_point`.

    Returns:
        One row per (setting, release), in that order.
    """
    releases = list(releases)
    names = [r.name for r in releases]
    if not releases or len(set(names)) != len(names):
        raise ParameterError(f"releases must be a non-empty list with distinct names, got {names}.")
    pairs = []
    for setting in settings:
        try:
            fraction, noise = setting
        except (TypeError, ValueError):
            raise ParameterError(f"each setting must be a (fraction_revealed, noise) pair, got {setting!r}.") from None
        pairs.append((check_fraction(fraction, "fraction_revealed", allow_zero=False),
                      check_fraction(noise, "noise", allow_zero=True)))
    if not pairs:
        raise ParameterError("settings is empty: give at least one (fraction_revealed, noise) pair.")
    X = binary_interactions(X, "X")
    return [attack_point(X, release, fraction, noise, phi=phi, seed=seed, batch_size=batch_size)
            for fraction, noise in pairs for release in releases]
