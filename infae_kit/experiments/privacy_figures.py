"""Figures and tables of notebook 06 (de-anonymization, paper Appendix B.6, Figures 8 and 9): the attack curves,
what each release publishes, and the recorded runs side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike
from infae_kit.evaluation.results import markdown_table
from infae_kit.experiments.privacy import ModelRelease, SampleRelease

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_attack_curves", "releases_table", "recorded_runs_table"]


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
