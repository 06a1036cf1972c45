"""Figures of notebook 01 (the NTK of ∞-AE, paper §3 and Appendix B.6 Fig. 6): convergence of finite networks'
empirical NTK to the analytic one, how Θ depends on activity and overlap, and ∞-AE's metrics against depth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import jax
import numpy as np

from infae_kit.models.ntk import ntk_from_gram

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["ntk_of_counts", "plot_width_convergence", "plot_ntk_dependence", "plot_depth_metrics"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def ntk_of_counts(n_features: int, depth: int = 1) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Θ for arrays of ``(|x|, |y|, xᵀy)`` triples of binary users over ``n_features`` items, element by element.

    Returns:
        A jitted function ``f(nx, ny, overlap) -> Θ`` of three ``(n,)`` float32 arrays, returning ``(n,)``
        (:func:`~infae_kit.models.ntk.ntk_from_gram` on 1 × 1 Gram matrices, vectorised).
    """
    return jax.jit(jax.vmap(lambda nx, ny, s: ntk_from_gram(s[None, None], nx[None], ny[None],
                                                            n_features=n_features, depth=depth)[0, 0]))


def plot_width_convergence(widths: Sequence[int], errors: Mapping[int, np.ndarray],
                           title: str = "") -> tuple[Figure, dict[int, float]]:
    """Relative error of finite networks' empirical NTK against the width (log–log), a line per depth, with the
    1/√width reference; the fitted log–log slope of the mean error per depth.

    Args:
        widths: ``(w,)`` hidden widths, increasing.
        errors: ``{depth: (w, n_seeds) relative Frobenius errors}``
            (:func:`~infae_kit.models.reference.empirical_ntk_by_width`).
        title: the axes' title.

    Returns:
        ``(figure, {depth: slope})`` (no slope with a single width).
    """
    import matplotlib.pyplot as plt

    widths = list(widths)
    slopes: dict[int, float] = {}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for color, (depth, errs) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], errors.items()):
        ax.plot(np.repeat(widths, errs.shape[1]), errs.ravel(), "o", color=color, alpha=0.35, ms=4)
        ax.plot(widths, errs.mean(axis=1), "-", color=color, label=f"depth {depth}")
        if len(widths) > 1:
            slopes[depth] = float(np.polyfit(np.log(widths), np.log(errs.mean(axis=1)), 1)[0])
    anchor = next(iter(errors.values())).mean(axis=1)[0]
    ref_widths = np.array([widths[0], widths[-1]], dtype=float)
    ax.plot(ref_widths, anchor * (ref_widths / ref_widths[0]) ** -0.5, "k--", lw=1,
            label=r"$\propto 1/\sqrt{\mathrm{width}}$")
    ax.set(xscale="log", yscale="log", xlabel="hidden width h",
           ylabel=r"$\Vert\Theta_h - \Theta_\infty\Vert_F \,/\, \Vert\Theta_\infty\Vert_F$", title=title)
    ax.legend()
    return fig, slopes


def plot_ntk_dependence(n_features: int, depth: int = 1, title: str = "") -> Figure:
    """Three panels of Θ on binary users: (a) against the overlap at equal activity, (b) normalised like a cosine
    against the other user's activity at fixed overlaps, (c) normalised over activity × overlap fraction.

    Args:
        n_features: the number of items ``d``.
        depth: hidden Dense → ReLU blocks.
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    theta = ntk_of_counts(n_features, depth)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for n in (5, 10, 20, 50):  # (a) Θ vs overlap, both users with the same activity n
        s = np.arange(0, n + 1, dtype=np.float32)
        n_arr = np.full_like(s, n)
        axes[0].plot(s, theta(n_arr, n_arr, s), "-o", ms=3, label=f"|x| = |y| = {n}")
    axes[0].set(xlabel="overlap xᵀy (shared items)", ylabel="Θ(x, y)", title="(a) more shared items → larger Θ")
    axes[0].legend()
    n_x = 20.0  # (b) normalised Θ vs the activity of y, for |x| = 20 and fixed overlaps
    for s in (0, 2, 5, 10, 20):
        n_y = np.arange(max(s, 1), 501, dtype=np.float32)
        n_xs, s_arr = np.full_like(n_y, n_x), np.full_like(n_y, s)
        cosine = theta(n_xs, n_y, s_arr) / np.sqrt(theta(n_xs, n_xs, n_xs) * theta(n_y, n_y, n_y))
        axes[1].plot(n_y, cosine, label=f"xᵀy = {s}")
    axes[1].set(xscale="log", xlabel="activity of y, |y| (items)",
                ylabel=r"$\Theta(x,y)/\sqrt{\Theta(x,x)\,\Theta(y,y)}$",
                title=f"(b) same overlap, |x| = {n_x:.0f}: heavier y → less similar")
    axes[1].legend()
    n_grid = np.unique(np.round(np.geomspace(1, 500, 60))).astype(np.float32)  # (c) Θ(x,y)/Θ(x,x)
    frac = np.linspace(0, 1, 41, dtype=np.float32)
    nn, ff = np.meshgrid(n_grid, frac)
    overlap = np.round(ff * nn)
    relative = np.asarray(theta(nn.ravel(), nn.ravel(), overlap.ravel())
                          / theta(nn.ravel(), nn.ravel(), nn.ravel())).reshape(nn.shape)
    mesh = axes[2].pcolormesh(n_grid, frac, relative, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=axes[2], label=r"$\Theta(x,y)\,/\,\Theta(x,x)$")
    axes[2].set(xscale="log", xlabel="activity |x| = |y|", ylabel="overlap fraction xᵀy / |x|",
                title="(c) normalised Θ over activity and overlap")
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def plot_depth_metrics(table: pd.DataFrame, metrics: Sequence[str], title: str = "") -> Figure:
    """Each metric divided by its best value over the depths, against the depth.

    Args:
        table: one row per depth (index ``"depth <d>"``), one column per metric.
        metrics: the columns to draw.
        title: the axes' title.
    """
    import matplotlib.pyplot as plt

    depths = [int(str(label).split()[-1]) for label in table.index]
    normalised = table[list(metrics)] / table[list(metrics)].max(axis=0)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for marker, metric in zip(_MARKERS, metrics):
        ax.plot(depths, normalised[metric].to_numpy(), marker=marker, label=metric)
    ax.set(xticks=depths, xlabel="depth (hidden Dense → ReLU blocks)", ylabel="metric / best depth's metric",
           title=title)
    ax.legend(ncol=2, fontsize="small")
    return fig
