"""Figures of notebook 08: quality against the number of landmarks, and cost against the number of users.

Both take plain rows (lists of dicts) as returned by
:func:`infae_kit.experiments.scale.quality_against_landmarks` and :func:`infae_kit.scale.cost.cost_against_users`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_quality_against_landmarks", "plot_cost_against_users"]

_LABELS = {("landmark", "uniform"): "landmark ∞-AE, uniform", ("landmark", "kmeans++"): "landmark ∞-AE, k-means++",
           ("landmark", "leverage"): "landmark ∞-AE, leverage", ("sampled", "uniform"): "∞-AE on m sampled users",
           ("exact", "all"): "exact ∞-AE (all users)"}
_STYLE = {"uniform": ("#4C72B0", "o"), "kmeans++": ("#DD8452", "s"), "leverage": ("#55A868", "^"),
          "sampled": ("#C44E52", "D")}


def plot_quality_against_landmarks(rows: Sequence[dict], metrics: Sequence[str], *, title: str = "",
                                   split: str = "test") -> Figure:
    """One panel per metric: the metric against m (log x) for each landmark rule and for ∞-AE on m sampled
    users; exact ∞-AE as a dashed horizontal line. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.2 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    series = {}
    for r in rows:
        if r["model"] != "exact":
            series.setdefault((r["model"], r["selection"]), []).append(r)
    exact = next((r for r in rows if r["model"] == "exact"), None)
    for ax, metric in zip(axes.ravel(), metrics):
        for key, pts in series.items():
            pts = sorted(pts, key=lambda r: r["m"])
            color, marker = _STYLE["sampled" if key[0] == "sampled" else key[1]]
            ax.plot([p["m"] for p in pts], [p[split][metric] for p in pts], marker=marker, color=color,
                    ls="--" if key[0] == "sampled" else "-", label=_LABELS.get(key, " ".join(key)))
        if exact is not None:
            ax.axhline(exact[split][metric], color="#333333", ls=":", label=_LABELS[("exact", "all")])
        ax.set_xscale("log")
        ms = sorted({r["m"] for r in rows if r["model"] != "exact"})
        ax.set_xticks(ms, [f"{m:,}" for m in ms])
        ax.minorticks_off()
        ax.set_xlabel("m (landmarks / sampled users)")
        ax.set_title(f"{split} {metric}")
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_cost_against_users(rows: Sequence[dict], exponents: dict | None = None, *, title: str = "") -> Figure:
    """Fit time and peak RSS against users on log–log axes, one line per model, the fitted exponent in the
    legend. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    colors = {"landmark": "#4C72B0", "exact": "#333333"}
    for model in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r for r in rows if r["model"] == model and "fit_s" in r), key=lambda r: r["users"])
        if not pts:
            continue
        k = (exponents or {}).get(model)
        label = f"{model} ∞-AE" + (f" (time ∝ users^{k:.2f})" if k is not None else "")
        users = np.array([p["users"] for p in pts])
        axes[0].plot(users, [p["fit_s"] for p in pts], marker="o", color=colors.get(model), label=label)
        axes[1].plot(users, [p["peak_rss_gb"] for p in pts], marker="o", color=colors.get(model), label=label)
    for ax, ylabel in zip(axes, ("fit time (s)", "peak RSS (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("users")
        ax.set_ylabel(ylabel)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig
