"""Figures of the budget sweeps (paper Figures 1–4, 10, 12–14): metric against the number of users per source,
and the relative drop under noise. Each takes a :class:`~infae_kit.experiments.sweeps.SweepResult`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from infae_kit.experiments.sweeps import (
    FULL,
    MODEL_LABELS,
    MODELS,
    SOURCE_LABELS,
    SweepResult,
    canonical_model,
    canonical_source,
    relative_drop,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_budget_curves", "plot_noise_drop", "plot_noise_budget_curves"]


def _style(source: str) -> dict[str, Any]:
    palette = {"interaction-rns": "#4C72B0", "user-rns": "#55A868", "head-user": "#C44E52", "svp-cf": "#8172B2",
               "distill-cf": "#DD8452", "ar-cf": "#937860", FULL: "#333333"}
    markers = {"interaction-rns": "o", "user-rns": "s", "head-user": "^", "svp-cf": "D", "distill-cf": "*",
               "ar-cf": "v"}
    return {"color": palette.get(source, "gray"), "marker": markers.get(source, "o")}


def _plotted_sources(result: SweepResult, sources: Sequence[str] | None) -> list[str]:
    """``sources`` canonicalised, or (``None``) every source of ``result`` but the whole-data one, in row order."""
    if sources is None:
        return [s for s in dict.fromkeys(r["source"] for r in result.rows) if s != FULL]
    return [canonical_source(s) for s in sources]


def _finish(fig, axes, title: str, max_ncol: int = 6):
    """One legend below the panels (entries of every panel, deduplicated) and the title above them."""
    entries: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncol=min(len(entries), max_ncol), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_budget_curves(result: SweepResult, *, models: Sequence[str], metrics: Sequence[str],
                       sources: Sequence[str] | None = None, noise_levels: Sequence[float] = (0.0,),
                       title: str = "", split: str = "test") -> Figure:
    """Metric against the number of users (log x), one line per source, the whole-data value dashed.

    One panel per (metric, model, noise level): with one model and one noise level the metrics are laid out in
    rows of three; otherwise rows are metrics and columns the models × noise levels. This draws Figures 1/12
    (``models=["infae"]``), 2 (``["ease"]``) and 10 (EASE on AR-CF / DISTILL-CF / user-RNS).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    models = [canonical_model(m) for m in models]
    noise_levels = [float(p) for p in noise_levels]
    sources = _plotted_sources(result, sources)
    columns = [(m, p) for p in noise_levels for m in models]
    panels = [(metric, model, noise) for metric in metrics for model, noise in columns]
    if len(columns) == 1:
        ncols = min(3, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
    else:
        nrows, ncols = len(metrics), len(columns)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (metric, model, noise) in zip(axes.ravel(), panels):
        for source in sources:
            x, y = result.curve(source, model, metric, noise, split)
            if len(x):
                ax.plot(x, y, label=SOURCE_LABELS.get(source, source), lw=1.8, ms=6, **_style(source))
        try:
            ax.axhline(result.value(FULL, model, metric, noise=noise, split=split), color="#333333", ls="--",
                       lw=1.2, label="Full data")
        except KeyError:
            pass
        ax.set_xscale("log")
        head = MODEL_LABELS[model] + (f" · noise {noise:g} %" if len(noise_levels) > 1 or noise else "")
        ax.set_title(head if len(columns) > 1 else f"{head} · {metric}", fontsize="medium")
        ax.set_xlabel("# users in the training data")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
    return _finish(fig, axes, title)


def plot_noise_drop(result: SweepResult, *, metrics: Sequence[str], budgets: Sequence[int], model: str = "ease",
                    sources: Sequence[str] | None = None, title: str = "") -> Figure:
    """Figures 3/13: % drop of ``model``'s metric relative to the clean full data, against the noise level.

    One panel per (metric, budget): rows are metrics, columns budgets; one line per source, plus the whole noisy
    data (dashed).
    """
    import matplotlib.pyplot as plt

    model = canonical_model(model)
    sources = _plotted_sources(result, sources)
    fig, axes = plt.subplots(len(metrics), len(budgets), figsize=(4.1 * len(budgets), 3.2 * len(metrics) + 0.6),
                             squeeze=False, sharey="row", layout="constrained")
    for i, metric in enumerate(metrics):
        drops = relative_drop(result.rows, metric, model)
        for j, n in enumerate(budgets):
            ax = axes[i, j]
            for source in sources + [FULL]:
                sel = drops[drops.source == source]
                if source != FULL:
                    sel = sel[sel.n_users == n]
                sel = sel.sort_values("noise")
                if len(sel):
                    ax.plot(sel.noise, sel.drop_percent, label=SOURCE_LABELS.get(source, source), lw=1.8, ms=6,
                            ls="--" if source == FULL else "-", **_style(source))
            ax.set_title(f"{MODEL_LABELS[model]} · {n} users", fontsize="medium")
            ax.set_xlabel("noise (% of items flipped per user)")
            if j == 0:
                ax.set_ylabel(f"% drop in {metric}")
            ax.grid(alpha=0.3)
    return _finish(fig, axes, title)


def plot_noise_budget_curves(result: SweepResult, *, metrics: Sequence[str], noise_levels: Sequence[float],
                             sources: Sequence[str] = ("distill-cf", "user-rns"), models: Sequence[str] = MODELS,
                             title: str = "", split: str = "test") -> Figure:
    """Figures 4/14: metric against the number of users, one column per noise level, one row per metric.

    Colours tell the sources apart and line styles the models (∞-AE solid, EASE dashed); the grey horizontal
    lines are each model trained on the whole (equally noisy) train matrix.
    """
    import matplotlib.pyplot as plt

    models = [canonical_model(m) for m in models]
    sources = [canonical_source(s) for s in sources]
    styles = {"infae": "-", "ease": "--"}
    fig, axes = plt.subplots(len(metrics), len(noise_levels),
                             figsize=(4.0 * len(noise_levels), 3.2 * len(metrics) + 0.8), squeeze=False,
                             sharey="row", layout="constrained")
    for i, metric in enumerate(metrics):
        for j, noise in enumerate(noise_levels):
            ax = axes[i, j]
            for model in models:
                for source in sources:
                    x, y = result.curve(source, model, metric, float(noise), split)
                    if len(x):
                        ax.plot(x, y, ls=styles[model], lw=1.8, ms=6,
                                label=f"{MODEL_LABELS[model]} · {SOURCE_LABELS[source]}", **_style(source))
                try:
                    ax.axhline(result.value(FULL, model, metric, noise=float(noise), split=split), color="#777777",
                               ls=styles[model], lw=1.0, label=f"{MODEL_LABELS[model]} · full data")
                except KeyError:
                    pass
            ax.set_xscale("log")
            ax.set_title(f"noise {float(noise):g} %", fontsize="medium")
            ax.set_xlabel("# users in the training data")
            if j == 0:
                ax.set_ylabel(metric)
            ax.grid(alpha=0.3, which="both")
    return _finish(fig, axes, title, max_ncol=3)
