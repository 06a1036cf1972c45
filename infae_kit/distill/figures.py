"""Figures and tables of notebook 03 (DISTILL-CF, paper §4): what multi-step Gumbel sampling does to one prior
row, a run's training curves, and the distilled users next to the real ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import jax
import numpy as np

from infae_kit.checks import MatrixLike
from infae_kit.distill.config import DistillConfig
from infae_kit.distill.sampler import hard_gumbel_support, multi_step_gumbel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["gumbel_row_profile", "plot_distill_training", "matrix_profile", "plot_distilled_vs_real"]


def gumbel_row_profile(prior_row: jax.Array, key: jax.Array, gammas: Sequence[int], taus: Sequence[float],
                       title: str = "") -> tuple[Figure, dict[str, dict[str, float]]]:
    """One prior row sampled with every (γ, τ): the sorted sampled values, a panel per τ and a curve per γ.

    Args:
        prior_row: ``(1, items)`` prior logits (e.g. a real user's train row).
        key: the PRNG key of every sample (so the settings differ only by γ and τ).
        gammas: Gumbel samples per row.
        taus: temperatures.
        title: the figure's title.

    Returns:
        ``(figure, {"gamma=<γ>,tau=<τ>": {"row_sum", "n_eff", "exact_nonzeros", "hard_items"}})``: ``n_eff`` is
        the participation ratio ``(Σx)² / Σx²`` of the soft sample, ``hard_items`` the items of the hard sample
        drawn with the same keys.
    """
    import matplotlib.pyplot as plt

    grid: dict[str, dict[str, float]] = {}
    fig, axes = plt.subplots(1, len(taus), figsize=(13, 3.6), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], taus):
        for g in gammas:
            soft = np.asarray(multi_step_gumbel(prior_row, key, g, t))[0]
            hard_items = int(np.asarray(hard_gumbel_support(prior_row, key, g)).sum())
            n_eff = float(soft.sum() ** 2 / np.square(soft).sum())
            grid[f"gamma={g},tau={t:g}"] = {"row_sum": float(soft.sum()), "n_eff": n_eff,
                                            "exact_nonzeros": int(np.count_nonzero(soft)), "hard_items": hard_items}
            ax.plot(np.arange(1, soft.size + 1), np.sort(soft)[::-1],
                    label=f"γ={g}: n_eff={n_eff:.0f}, hard={hard_items}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-6, 1.5)
        ax.set_xlabel("item rank in the sample")
        ax.set_title(f"τ = {t:g}")
        ax.legend(fontsize=8, loc="lower left")
    axes[0, 0].set_ylabel("sampled value $\\hat x_i$")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, grid


def plot_distill_training(history: Mapping[str, Any], config: DistillConfig, title: str = "") -> Figure:
    """A run's training loss, its validation HR@100 and NDCG@10, and the inner λ picked at each validation.

    Args:
        history: :attr:`~infae_kit.distill.DistillResult.history` (``loss``, ``evaluations``, ``best_step``).
        config: the run's configuration (its λ grid bounds the λ axis).
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    ev_steps = [e["step"] for e in history["evaluations"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].plot(np.arange(1, len(history["loss"]) + 1), history["loss"])
    axes[0].set_xlabel("outer step")
    axes[0].set_title("training loss")
    axes[1].plot(ev_steps, [e["metrics"]["HR@100"] for e in history["evaluations"]], marker="o", label="HR@100")
    axes[1].plot(ev_steps, [e["metrics"]["NDCG@10"] for e in history["evaluations"]], marker="s", label="NDCG@10")
    axes[1].axvline(history["best_step"], ls="--", c="gray")
    axes[1].set_xlabel("outer step")
    axes[1].set_title("validation (λ picked at each)")
    axes[1].legend()
    axes[2].step(ev_steps, [e["lambda"] for e in history["evaluations"]], where="post", marker="o")
    axes[2].set_yscale("log")
    axes[2].set_ylim(min(config.val_lambdas) / 2, max(config.val_lambdas) * 2)
    axes[2].set_xlabel("outer step")
    axes[2].set_title("inner λ picked on validation")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def matrix_profile(matrix: MatrixLike) -> dict[str, float]:
    """Row sums and item popularity of a ``(users, items)`` matrix (soft or binary).

    Returns:
        ``mean_row_sum``, ``median_row_sum``, ``items_with_mass`` (columns with a non-zero sum) and
        ``top10pct_item_share`` (share of the total mass on the 10 % most popular items).
    """
    row_sums = np.sort(np.asarray(matrix.sum(axis=1)).ravel())
    pop = np.sort(np.asarray(matrix.sum(axis=0)).ravel())[::-1]
    return {"mean_row_sum": float(row_sums.mean()), "median_row_sum": float(np.median(row_sums)),
            "items_with_mass": int(np.count_nonzero(pop)),
            "top10pct_item_share": float(pop[: max(len(pop) // 10, 1)].sum() / pop.sum())}


def plot_distilled_vs_real(matrices: Mapping[str, MatrixLike],
                           title: str = "") -> tuple[Figure, dict[str, dict[str, float]]]:
    """Interactions per user (cumulative, log x) and item popularity (share of the mass by item rank, log y) of
    several matrices over the same items, e.g. the real train users, the initial support and the distilled one.

    Returns:
        ``(figure, {label: matrix_profile(matrix)})``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    profile = {}
    for label, m in matrices.items():
        row_sums = np.sort(np.asarray(m.sum(axis=1)).ravel())
        pop = np.sort(np.asarray(m.sum(axis=0)).ravel())[::-1]
        profile[label] = matrix_profile(m)
        axes[0].plot(row_sums, np.linspace(0, 1, len(row_sums), endpoint=False), label=label, drawstyle="steps-post")
        axes[1].plot(np.arange(1, len(pop) + 1), pop / pop.sum(), label=label)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("interactions per user (row sum)")
    axes[0].set_ylabel("fraction of users ≤ x")
    axes[0].legend(fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("item rank")
    axes[1].set_ylabel("share of interactions")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, profile
