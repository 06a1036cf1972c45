"""Figures and tables of notebook 06 (de-anonymization, paper Appendix B.6, Figures 8 and 9): the attack curves,
what each release publishes, the recorded runs side by side, and DISTILL-CF's privacy–utility frontier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike
from infae_kit.evaluation.results import markdown_table
from infae_kit.experiments.privacy import ModelRelease, SampleRelease
from infae_kit.experiments.privacy_frontier import (
    QUALITY_METRIC,
    TARGET_MAX_DEANONYMIZED_PERCENT,
    TARGET_MIN_QUALITY_PERCENT,
    FrontierResult,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_attack_curves", "releases_table", "recorded_runs_table", "plot_privacy_frontier", "frontier_table",
           "frontier_verdict"]


def plot_attack_curves(rows: Sequence[Mapping[str, Any]], x: str, xlabel: str, title: str = "") -> Figure:
    """Left: % of targets de-anonymized against ``x``, one line per release (solid: matching a sample; dashed:
    prediction from a model; the control grey). Right: the prediction attack graded, the share of the missing
    items among its top-m guesses.

    Args:
        rows: :func:`~infae_kit.experiments.privacy.attack_sweep`'s rows.
        x: the swept column, ``"noise"`` or ``"fraction_revealed"`` (fractions, drawn in percent).
        xlabel: its label.
        title: the left panel's title.
    """
    import matplotlib.pyplot as plt

    releases = list(dict.fromkeys(r["release"] for r in rows))
    fig, (ax, ax_rec) = plt.subplots(1, 2, figsize=(12.5, 4.4), gridspec_kw={"width_ratios": [1.5, 1]})
    for name in releases:
        part = [r for r in rows if r["release"] == name]
        kind = part[0]["attack"]
        style = dict(ls="-" if kind == "matching" else "--", marker="o" if kind == "matching" else "s",
                     color="gray" if name == "control" else None, zorder=1 if name == "control" else 2)
        xs = [100 * r[x] for r in part]
        line, = ax.plot(xs, [r["percent"] for r in part], label=f"{name} ({kind}, {int(part[0]['targets'])} targets)",
                        **style)
        if kind == "prediction":
            ax_rec.plot(xs, [r["recovered_percent"] for r in part], label=name, **dict(style, color=line.get_color()))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("% of users de-anonymized")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax_rec.set_xlabel(xlabel)
    ax_rec.set_ylabel("% of missing items in the top-m")
    ax_rec.set_ylim(bottom=0)
    ax_rec.set_title("prediction attack, graded")
    ax_rec.legend(fontsize=8)
    fig.tight_layout()
    return fig


def releases_table(releases: Iterable[SampleRelease | ModelRelease], X: MatrixLike,
                   published: Mapping[str, MatrixLike]) -> str:
    """Markdown table of what each release publishes and whom it targets.

    Args:
        releases: the releases attacked.
        X: ``(n_users, n_items)`` D, the users' true rows (for the targets' item counts).
        published: for each :class:`~infae_kit.experiments.privacy.ModelRelease`, the rows its model was fitted on
            (a summary's mass counts its soft values).
    """
    items_per_user = np.diff(sp.csr_matrix(X).indptr)
    rows = []
    for r in releases:
        matrix = r.rows if isinstance(r, SampleRelease) else published[r.name]
        mass = matrix.nnz if isinstance(r, SampleRelease) else float(matrix.sum())
        rows.append([r.name, "matching" if isinstance(r, SampleRelease) else "prediction", f"{matrix.shape[0]:,}",
                     f"{mass:,.0f}", f"{len(r.targets):,}", f"{items_per_user[r.targets].mean():.1f}"])
    return markdown_table(["release", "attack", "published rows", "interactions (summary: mass)", "targets",
                           "mean items per target"], rows, align=["l", "l", "r", "r", "r", "r"])


def _point(record: Mapping[str, Any], release: str, **where: float) -> float | None:
    for row in record["fig8"]:
        if row["release"] == release and all(np.isclose(row[k], v) for k, v in where.items()):
            return float(row["percent"])
    return None


def recorded_runs_table(records: Iterable[Mapping[str, Any]]) -> str:
    """Markdown table of recorded runs of notebook 06 (one row per dataset): % de-anonymized at the headline
    setting (no noise) by every release, the share of missing items the summary and the control recover, and the
    first sampling strategy at the largest noise.

    Args:
        records: result records of notebook 06 (:func:`~infae_kit.evaluation.results.read_results`).
    """
    records = list(records)
    samples = list(dict.fromkeys(r["release"] for rec in records for r in rec["fig8"] if r["attack"] == "matching"))
    rows = []
    for rec in records:
        head = rec["headline"]
        cells = [rec["dataset"]]
        for name in samples + ["DISTILL-CF", "control"]:
            value = _point(rec, name, noise=0.0)
            cells.append("—" if value is None else f"{value:.1f}")
        cells.append(f"{head['distillation_recovered_percent']:.1f} / {head['control_recovered_percent']:.1f}")
        cells.append(f"{head['sampling_percent_at_max_noise']:.1f} ({head['sampling_strategy']}, "
                     f"{head['max_noise_percent']:g} %)")
        rows.append(cells)
    return markdown_table(["dataset", *samples, "DISTILL-CF", "control",
                           "missing items recovered, DISTILL-CF / control", "sampling at the largest noise"], rows)


def _frontier_dict(frontier: FrontierResult | Mapping[str, Any]) -> Mapping[str, Any]:
    return frontier.to_dict() if isinstance(frontier, FrontierResult) else frontier


def plot_privacy_frontier(frontier: FrontierResult | Mapping[str, Any], title: str = "") -> Figure:
    """De-anonymized % (y) against test NDCG@10 as % of full-data ∞-AE's (x): one marker per DISTILL-CF setting,
    coloured by μ as a share of the users, one marker shape and one line per (γ, τ) joining the μ values; the
    control (∞-AE on every non-target user) as a grey star; the target region, at most
    :data:`~infae_kit.experiments.privacy_frontier.TARGET_MAX_DEANONYMIZED_PERCENT` de-anonymized at
    :data:`~infae_kit.experiments.privacy_frontier.TARGET_MIN_QUALITY_PERCENT` or more of full-data quality, shaded.

    Args:
        frontier: :func:`~infae_kit.experiments.privacy_frontier.privacy_frontier`'s result, or its ``to_dict()``
            (as recorded in notebook 06's results).
        title: the axes' title.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    f = _frontier_dict(frontier)
    rows, control = list(f["rows"]), f["control"]
    fig, ax = plt.subplots(figsize=(8.2, 5.2))
    shares = [r["budget_percent"] for r in rows]
    norm = Normalize(vmin=min(shares), vmax=max(shares) if max(shares) > min(shares) else min(shares) + 1)
    cmap = plt.get_cmap("viridis")
    markers = "osD^vP<>"
    curves = list(dict.fromkeys((r["gamma"], r["tau"]) for r in rows))
    for i, (gamma, tau) in enumerate(curves):
        part = sorted((r for r in rows if (r["gamma"], r["tau"]) == (gamma, tau)), key=lambda r: r["budget"])
        xs, ys = [r["quality_percent"] for r in part], [r["deanonymized_percent"] for r in part]
        ax.plot(xs, ys, color="0.6", lw=0.8, zorder=1)
        ax.scatter(xs, ys, c=[r["budget_percent"] for r in part], cmap=cmap, norm=norm, s=70,
                   marker=markers[i % len(markers)], edgecolors="black", linewidths=0.6, zorder=3,
                   label=f"DISTILL-CF, γ = {gamma}, τ = {tau:g}")
    ax.scatter([control["quality_percent"]], [control["deanonymized_percent"]], marker="*", s=220, color="0.45",
               edgecolors="black", linewidths=0.6, zorder=3,
               label=f"control: ∞-AE on {control['users']:,} non-target users")
    xs = [r["quality_percent"] for r in rows] + [control["quality_percent"], 100.0]
    ys = [r["deanonymized_percent"] for r in rows] + [control["deanonymized_percent"]]
    x_low, x_high = min(min(xs), TARGET_MIN_QUALITY_PERCENT) - 5, max(xs) + 5
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(-1, max(max(ys), 5 * TARGET_MAX_DEANONYMIZED_PERCENT) * 1.1 + 1)
    ax.add_patch(Rectangle((TARGET_MIN_QUALITY_PERCENT, 0), x_high - TARGET_MIN_QUALITY_PERCENT,
                           TARGET_MAX_DEANONYMIZED_PERCENT, facecolor="tab:green", alpha=0.25, edgecolor="tab:green",
                           zorder=0, label=f"target: ≤ {TARGET_MAX_DEANONYMIZED_PERCENT:g} % at ≥ "
                                           f"{TARGET_MIN_QUALITY_PERCENT:g} % of full-data quality"))
    ax.axvline(100.0, color="0.3", ls=":", lw=1)
    colorbar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    colorbar.set_label("μ (% of the users)")
    attack = f["attack"]
    ax.set_xlabel(f"test {QUALITY_METRIC} of ∞-AE on the summary (% of full-data ∞-AE)")
    ax.set_ylabel(f"% of {attack['targets']} targets de-anonymized")
    ax.set_title(title or f"{f['dataset']}: {100 * attack['fraction_revealed']:.0f} % revealed, "
                          f"{100 * attack['noise']:g} % noise")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def frontier_table(frontier: FrontierResult | Mapping[str, Any]) -> str:
    """Markdown table of the frontier: one row per setting, then the control; μ, γ, τ, ∞-AE's test NDCG@10 and its
    share of full-data ∞-AE's, % de-anonymized, share of the missing items recovered, and whether the row is in
    the target region.

    Args:
        frontier: :func:`~infae_kit.experiments.privacy_frontier.privacy_frontier`'s result, or its ``to_dict()``.
    """
    f = _frontier_dict(frontier)

    def in_target(r: Mapping[str, Any]) -> str:
        return "yes" if (r["deanonymized_percent"] <= TARGET_MAX_DEANONYMIZED_PERCENT
                         and r["quality_percent"] >= TARGET_MIN_QUALITY_PERCENT) else "no"

    metric = f"test_{QUALITY_METRIC}"
    rows = [[f"{r['budget']:,} ({r['budget_percent']:.1f} %)", str(r["gamma"]), f"{r['tau']:g}", str(r["steps"]),
             f"{r[metric]:.2f}", f"{r['quality_percent']:.1f}", f"{r['deanonymized_percent']:.1f}",
             f"{r['recovered_percent']:.1f}", in_target(r)] for r in f["rows"]]
    c = f["control"]
    rows.append([f"control ({c['users']:,} real users)", "—", "—", "—", f"{c[metric]:.2f}",
                 f"{c['quality_percent']:.1f}", f"{c['deanonymized_percent']:.1f}", f"{c['recovered_percent']:.1f}",
                 in_target(c)])
    return markdown_table(["μ (% of users)", "γ", "τ", "steps", QUALITY_METRIC, "% of full data", "% de-anonymized",
                           "% of missing items recovered", "in target"], rows,
                          align=["l", "r", "r", "r", "r", "r", "r", "r", "l"])


def frontier_verdict(frontier: FrontierResult | Mapping[str, Any]) -> str:
    """One Markdown sentence: does a setting of the frontier reach the target (at most
    :data:`~infae_kit.experiments.privacy_frontier.TARGET_MAX_DEANONYMIZED_PERCENT` de-anonymized at
    :data:`~infae_kit.experiments.privacy_frontier.TARGET_MIN_QUALITY_PERCENT` or more of full-data quality)? If one
    does, the best-quality one; if none does, the closest points on each side: the best quality among the settings
    private enough, and the lowest de-anonymization among those good enough.

    Args:
        frontier: :func:`~infae_kit.experiments.privacy_frontier.privacy_frontier`'s result, or its ``to_dict()``.
    """
    f = _frontier_dict(frontier)
    rows = f["rows"]
    max_d, min_q = TARGET_MAX_DEANONYMIZED_PERCENT, TARGET_MIN_QUALITY_PERCENT

    def setting(r: Mapping[str, Any]) -> str:
        return f"μ = {r['budget']:,} ({r['budget_percent']:.1f} % of the users), γ = {r['gamma']}, τ = {r['tau']:g}"

    def point(r: Mapping[str, Any]) -> str:
        return f"{r['deanonymized_percent']:.1f} % de-anonymized at {r['quality_percent']:.1f} % of full-data quality"

    head = f"**{f['dataset']}** ({len(rows)} DISTILL-CF settings, "
    private = sorted((r for r in rows if r["deanonymized_percent"] <= max_d), key=lambda r: -r["quality_percent"])
    good = sorted((r for r in rows if r["quality_percent"] >= min_q), key=lambda r: r["deanonymized_percent"])
    reached = [r for r in private if r["quality_percent"] >= min_q]
    if reached:
        return (head + f"≤ {max_d:g} % at ≥ {min_q:g} %: **reached** by {len(reached)}; the best quality: "
                f"{setting(reached[0])}, {point(reached[0])}.")
    parts = [f"best quality at ≤ {max_d:g} %: {setting(private[0])}, {point(private[0])}" if private
             else f"none de-anonymizes {max_d:g} % or fewer",
             f"least de-anonymized at ≥ {min_q:g} % quality: {setting(good[0])}, {point(good[0])}" if good
             else f"none reaches {min_q:g} % of full-data quality"]
    c = f["control"]
    return (head + f"≤ {max_d:g} % at ≥ {min_q:g} %: **not reached**; " + "; ".join(parts)
            + f". The control: {point(c)}.")
