"""Figures and tables of notebook 07 (continual learning, paper §5 Figure 5, Appendix B.6 Figure 11): the
strategies' average next-period performance, their per-period curves, the periods and the two memories."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from infae_kit.evaluation.results import markdown_table
from infae_kit.experiments.continual import PeriodSplit
from infae_kit.experiments.continual_models import (
    STRATEGIES,
    ContinualResult,
    active_rows,
)
from infae_kit.experiments.continual_selection import ContinualSelection

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["STRATEGY_NAMES", "plot_continual_averages", "plot_continual_per_period", "periods_table",
           "averages_table", "memories_table", "selection_table", "claim_table", "plot_memory_weight",
           "plot_memory_probe"]

STRATEGY_NAMES = {"individual": "Individual", "joint": "Joint", "ader": "ADER", "distill-cf": "DISTILL-CF"}
"""Display names of :data:`~infae_kit.experiments.continual_models.STRATEGIES`."""


def _colors() -> dict[str, str]:
    import matplotlib.pyplot as plt

    return dict(zip(STRATEGIES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))


def plot_continual_averages(result: ContinualResult, periods: Sequence[int], metrics: Sequence[str],
                            title: str = "") -> Figure:
    """Figure 5: each strategy's metric averaged over ``periods`` (bars, the value written in), with the standard
    error over those periods, a panel per metric.

    Args:
        result: :func:`~infae_kit.experiments.continual_models.run_continual`'s result.
        periods: the steps averaged over (the strategies differ from t = 1 on).
        metrics: the panels (``HR@10``, …).
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    colors = _colors()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        per_period = result.per_period(m)
        values = [np.asarray(per_period[s])[list(periods)] for s in result.strategies]
        means = [v.mean() for v in values]
        sems = [v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0 for v in values]
        ax.bar([STRATEGY_NAMES[s] for s in result.strategies], means, yerr=sems, capsize=3,
               color=[colors[s] for s in result.strategies])
        for i, v in enumerate(means):
            ax.text(i, v / 2, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white")
        ax.set_title(f"{m} (%)")
        ax.tick_params(axis="x", labelrotation=20)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_continual_per_period(result: ContinualResult, metrics: Sequence[str], title: str = "") -> Figure:
    """Figure 11: each strategy's metric period by period (the model of period t on period t + 1).

    Args:
        result: :func:`~infae_kit.experiments.continual_models.run_continual`'s result.
        metrics: the panels.
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    colors = _colors()
    n_steps = 1 + max(r["period"] for r in result.rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(14 * len(metrics) / 3, 3.8), sharex=True, squeeze=False)
    for ax, m in zip(axes[0], metrics):
        per_period = result.per_period(m)
        for s in result.strategies:
            ax.plot(np.arange(n_steps) + 1, per_period[s], marker="o", ms=3, label=STRATEGY_NAMES[s], color=colors[s])
        ax.set_xlabel("period predicted (t + 1)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(f"{m} (%)")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def periods_table(split: PeriodSplit) -> tuple[str, dict[str, list[int]]]:
    """Markdown table of the periods: interactions, active users, users new in the period, first and last day.

    Returns:
        ``(table, {"active_users": [...], "new_users": [...]})``, one entry per period.
    """
    active = [int(active_rows(m).size) for m in split.periods]
    new_users = [active[0]] + [
        int(np.sum((np.diff(split.periods[t].indptr) > 0) & (np.diff(split.history(t - 1).indptr) == 0)))
        for t in range(1, split.n_periods)]
    day = lambda t: np.datetime64(int(split.boundaries[t]), "s").astype("datetime64[D]")  # noqa: E731
    rows = [[t, f"{int(split.sizes[t]):,}", active[t], new_users[t], day(t), day(t + 1)]
            for t in range(split.n_periods)]
    table = markdown_table(["period", "interactions", "active users", "new users", "first day", "last day"], rows,
                           align=["l"] * 6)
    return table, {"active_users": active, "new_users": new_users}


def averages_table(averages: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> str:
    """Markdown table of ``{strategy: {metric: average}}``, a row per strategy."""
    return markdown_table(["strategy", *metrics],
                          [[STRATEGY_NAMES.get(s, s)] + [f"{v[m]:.2f}" for m in metrics] for s, v in averages.items()],
                          align=["l"] * (1 + len(metrics)))


def memories_table(result: ContinualResult) -> str:
    """Markdown table of the two memories per period: ADER's λ_t and items seen before → now, and the DISTILL-CF
    summary of the period before (its users, and the validation HR@100 of its initial random users → the summary).
    """
    summaries: dict[int, dict[str, Any]] = {s["period"]: s for s in result.summaries}

    def summary_cells(s: dict[str, Any] | None) -> list[str]:
        if s is None:
            return ["—", "—"]
        return [str(s["n_users"]), f"{s['val_HR@100_step0']:.1f} → {s['val_HR@100']:.1f} (step {s['best_step']})"]

    if result.exemplars:
        rows = [[ex["period"], f"{ex['lambda']:.3f}", f"{ex['n_items_before']} → {ex['n_items_now']}",
                 *summary_cells(summaries.get(ex["period"] - 1))] for ex in result.exemplars]
    else:
        rows = [[t + 1, "—", "—", *summary_cells(s)] for t, s in sorted(summaries.items())]
    return markdown_table(["period t", "ADER λ_t", "items seen before → now", "users of t−1",
                           "DISTILL-CF val HR@100: random users → summary"], rows, align=["l"] * 5)


def _setting_label(setting: Mapping[str, Any]) -> str:
    names = {"lambda_base": "λ_base", "memory_weight": "weight", "support": "", "gamma": "γ", "tau": "τ"}
    parts = [f"{names[k]} {v:g}" if isinstance(v, (int, float)) else str(v) for k, v in setting.items()]
    return ", ".join(parts) or "—"


def selection_table(selection: ContinualSelection, metrics: Sequence[str]) -> str:
    """Markdown table of every (strategy, setting) of a :func:`~infae_kit.experiments.continual_selection.
    select_continual` run: the validation metric that chose, and the test metrics; the chosen rows in bold."""
    rows = []
    for c in selection.candidates:
        mark = (lambda x: f"**{x}**") if c["chosen"] else (lambda x: x)
        rows.append([mark(STRATEGY_NAMES.get(c["strategy"], c["strategy"])), mark(_setting_label(c["setting"])),
                     mark(f"{c['validation'][selection.metric]:.2f}"), *(mark(f"{c['test'][m]:.2f}") for m in metrics)])
    return markdown_table(["strategy", "setting", f"validation {selection.metric}", *(f"test {m}" for m in metrics)],
                          rows, align=["l", "l"] + ["r"] * (1 + len(metrics)))


def claim_table(claim: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of :func:`~infae_kit.experiments.continual_selection.ordering_claim`: a row per metric with
    the three means, the paired differences (± standard error) and whether DISTILL-CF ≥ ADER ≥ Individual holds."""
    def pm(value: float, sem: float | None) -> str:
        return f"{value:+.2f}" + (f" ± {sem:.2f}" if sem is not None else "")

    rows = [[m, f"{c['distill-cf']:.2f}", f"{c['ader']:.2f}", f"{c['individual']:.2f}",
             pm(c["paired_diff_distill_minus_ader"], c["paired_diff_sem"]),
             f"{c['periods_distill_ge_ader']} / {c['periods_compared']}",
             pm(c["paired_diff_ader_minus_individual"], c["paired_diff_ader_minus_individual_sem"]),
             "holds" if c["holds"] else "does not hold"]
            for m, c in claim.items()]
    return markdown_table(["metric", "DISTILL-CF", "ADER", "Individual", "DISTILL-CF − ADER",
                           "periods DISTILL-CF ≥ ADER",
                           "ADER − Individual", "DISTILL-CF ≥ ADER ≥ Individual"], rows)


def plot_memory_weight(selection: ContinualSelection, metric: str, title: str = "") -> Figure:
    """DISTILL-CF's test ``metric`` against the weight of its synthetic rows in MVAE's loss, a line per
    summary (support, γ, τ), with ADER's chosen setting, Individual and Joint as black and grey lines; the chosen
    DISTILL-CF setting circled.

    Args:
        selection: :func:`~infae_kit.experiments.continual_selection.select_continual`'s result.
        metric: a test metric (``NDCG@10``, …).
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 3.8))
    lines: dict[str, list[tuple[float, float, bool]]] = {}
    for c in selection.candidates:
        if c["strategy"] != "distill-cf":
            continue
        rest = {k: v for k, v in c["setting"].items() if k != "memory_weight"}
        lines.setdefault(_setting_label(rest), []).append(
            (float(c["setting"].get("memory_weight", 1.0)), c["test"][metric], c["chosen"]))
    markers = itertools.cycle("osD^v")
    shades = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, max(len(lines), 1)))
    all_weights: set[float] = set()
    for (label, points), color in zip(lines.items(), shades):
        points.sort()
        w, v, _ = zip(*points)
        all_weights.update(w)
        ax.plot(w, v, marker=next(markers), color=color, label=f"DISTILL-CF, {label}")
        for wi, vi, ci in points:
            if ci:
                ax.plot([wi], [vi], marker="o", ms=14, mfc="none", mec="black")
    for s, style in (("ader", ("black", "--")), ("individual", ("0.45", ":")), ("joint", ("0.45", "-."))):
        chosen = [c for c in selection.candidates if c["strategy"] == s and c["chosen"]]
        if chosen:
            ax.axhline(chosen[0]["test"][metric], color=style[0], ls=style[1], lw=1.2,
                       label=f"{STRATEGY_NAMES[s]}" + (f" ({_setting_label(chosen[0]['setting'])})"
                                                        if chosen[0]["setting"] else ""))
    ax.set_xscale("log", base=2)
    if all_weights:
        ax.set_xticks(sorted(all_weights), [f"{w:g}" for w in sorted(all_weights)])
        ax.minorticks_off()
    ax.set_xlabel("weight of a synthetic row in MVAE's loss (a data row: 1)")
    ax.set_ylabel(f"test {metric} (%)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_memory_probe(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], title: str = "") -> Figure:
    """Each model fitted on each memory alone (:func:`~infae_kit.experiments.continual_memory.memory_probe`):
    the validation metric averaged over the summarised periods (bars, ± standard error over periods); a row of
    panels per metric, a column per model (shared y axis within a row).

    Args:
        rows: :func:`~infae_kit.experiments.continual_memory.memory_probe`'s rows.
        metrics: e.g. ``["NDCG@10", "HR@100"]``.
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    memories = list(dict.fromkeys(r["memory"] for r in rows))
    fig, axes = plt.subplots(len(metrics), len(models), figsize=(4.2 * len(models), 3.0 * len(metrics)),
                             squeeze=False, sharey="row")
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, metric in enumerate(metrics):
        for ax, model in zip(axes[i], models):
            for j, memory in enumerate(memories):
                values = np.array([r[metric] for r in rows if r["model"] == model and r["memory"] == memory])
                sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
                ax.bar(j, values.mean(), yerr=sem, capsize=3, color=palette[j % len(palette)])
                ax.text(j, values.mean() / 2, f"{values.mean():.1f}", ha="center", va="center", fontsize=8,
                        color="white")
            ax.set_xticks(range(len(memories)), memories if i == len(metrics) - 1 else [""] * len(memories),
                          rotation=12)
            ax.set_title(f"{model} fitted on the memory alone" if i == 0 else "")
            ax.set_ylabel(f"validation {metric} (%)" if model == models[0] else "")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
