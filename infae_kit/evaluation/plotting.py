"""One figure style for the kit, reproducible figure files, and the evaluation's own figures.

:func:`set_theme` sets a paper-like seaborn theme (white grid, colour-blind palette, readable fonts).
:func:`save_figure` writes a figure under :func:`infae_kit.paths.figures_dir` (or a given folder), atomically
and byte-for-byte reproducibly: no timestamps or software versions in the files' metadata, a fixed SVG hash
salt. The figure is left open, so it still shows inline in a notebook.

Figures of the evaluation protocol, one call each in the notebooks: :func:`plot_lambda_sweep` (validation
metrics over a hyper-parameter grid) and :func:`plot_coldstart` (the paper's Figure 7). Each experiment's own
figures live next to it (``models/ntk_figures``, ``distill/figures``, ``experiments/sweep_figures``,
``experiments/privacy_figures``, ``experiments/continual_figures``).

Example:
    >>> set_theme()
    >>> fig, ax = plt.subplots()
    >>> ax.plot(budgets, hr10)
    >>> save_figure(fig, "fig1_sampling_ml-1m", formats=("png", "pdf"))
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import EvaluationResult, hit_rate_by_item_bucket, hit_rate_by_user_bucket
from infae_kit.io_utils import atomic_write_bytes
from infae_kit.paths import figures_dir as default_figures_dir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from infae_kit.data.dataset import RecDataset

__all__ = ["FIGURE_FORMATS", "set_theme", "save_figure", "plot_lambda_sweep", "plot_coldstart", "plot_degree_distributions"]

FIGURE_FORMATS = ("png", "pdf", "svg")
"""Formats :func:`save_figure` can write reproducibly."""

# Metadata entries set to None are left out of the file (matplotlib's documented way to drop defaults).
_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}
_SVG_HASH_SALT = "infae_kit"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-.]*$")


def set_theme(font_scale: float = 1.2) -> None:
    """Set the kit's plotting theme (seaborn ``paper`` context, white grid, colour-blind palette).

    Args:
        font_scale: multiplier of seaborn's ``paper`` font sizes (1.2 keeps labels readable in notebooks).
    """
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette="colorblind",
        font="sans-serif",
        font_scale=font_scale,
        rc={
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "lines.linewidth": 1.8,
            "lines.markersize": 5,
            "pdf.fonttype": 42,  # embed TrueType, editable text in PDF
            "svg.fonttype": "path",
        },
    )
    mpl.rcParams["svg.hashsalt"] = _SVG_HASH_SALT


def _check_name(name) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ParameterError(
            f"Figure name {name!r} must be a non-empty file stem of letters, digits, '_', '-' or '.' (no path "
            "separators, not starting with '.' or '-'), e.g. 'fig1_sampling_ml-1m'."
        )
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in FIGURE_FORMATS or suffix in {"jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp", "pgf", "raw"}:
        raise ParameterError(
            f"Figure name {name!r} ends in an extension; pass the stem (e.g. {Path(name).stem!r}) and choose "
            "the file types with formats=(...)."
        )
    return name


def save_figure(
    fig: Figure,
    name: str,
    figures_dir: str | os.PathLike | None = None,
    formats: Iterable[str] = ("png",),
    dpi: int = 150,
    *,
    close: bool = False,
) -> list[Path]:
    """Save ``fig`` as ``{figures_dir}/{name}.{format}`` for each format, atomically and reproducibly.

    Args:
        fig: a matplotlib Figure.
        name: file stem, no folder and no extension.
        figures_dir: target folder (default :func:`infae_kit.paths.figures_dir`); created if missing.
        formats: any of ``"png"``, ``"pdf"``, ``"svg"``.
        dpi: resolution of raster output.
        close: close the figure afterwards (default False: it still shows inline in a notebook).

    Returns:
        The paths written, in the order of ``formats``.

    Raises:
        ParameterError: bad name, unknown format, non-positive dpi, not a Figure.
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ParameterError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
    name = _check_name(name)
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(formats)
    if not formats:
        raise ParameterError(f"formats must name at least one of {FIGURE_FORMATS}.")
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ParameterError(f"Unknown figure format {fmt!r}; choose from {FIGURE_FORMATS}.")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or dpi <= 0:
        raise ParameterError(f"dpi must be a positive number, got {dpi!r}.")
    folder = Path(figures_dir) if figures_dir is not None else default_figures_dir()
    paths = []
    with mpl.rc_context({"svg.hashsalt": _SVG_HASH_SALT}):
        for fmt in dict.fromkeys(formats):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=dict(_METADATA[fmt]))
            paths.append(atomic_write_bytes(folder / f"{name}.{fmt}", buffer.getvalue()))
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def plot_lambda_sweep(val_metrics: Mapping[float, Mapping[str, float]], best_value: float,
                      metrics: Sequence[str] = ("HR@100", "NDCG@10", "AUC"), title: str = "") -> Figure:
    """Validation metrics over a λ grid (one panel per metric, λ on an even axis), the picked λ dashed.

    Args:
        val_metrics: ``{λ: {metric: value}}``, e.g. :attr:`~infae_kit.evaluation.selection.TuningReport.val_metrics`.
        best_value: the λ picked.
        metrics: the panels.
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    lams = sorted(val_metrics)
    xs = list(range(len(lams)))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        ax.plot(xs, [val_metrics[lam][name] for lam in lams], marker="o")
        ax.axvline(lams.index(best_value), ls="--", c="gray")
        ax.set_xticks(xs, [f"{lam:g}" for lam in lams])
        ax.set_xlabel("λ (× trace(K)/n)")
        ax.set_title(f"validation {name}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_coldstart(results: Mapping[str, EvaluationResult], data: RecDataset, n_buckets: int = 5, k: int = 100,
                   title: str = "") -> tuple[Figure, dict[str, dict[str, list[float]]]]:
    """The paper's Figure 7: test HR@k over user and item coldness buckets, one line per model.

    Users are split into ``n_buckets`` equal-size buckets by train interactions and items by train popularity
    (coldest first; :func:`~infae_kit.evaluation.protocol.hit_rate_by_user_bucket`,
    :func:`~infae_kit.evaluation.protocol.hit_rate_by_item_bucket`).

    Args:
        results: ``{label: test EvaluationResult}``, each with per-user ``HR@k`` and its ``top_k`` lists.
        data: the dataset evaluated (its train and test splits).
        n_buckets: buckets per axis.
        k: the cut-off.
        title: the figure's title.

    Returns:
        ``(figure, {"users": {label: [HR per bucket]}, "items": {label: [HR per bucket]}})``.
    """
    import matplotlib.pyplot as plt

    coldness: dict[str, dict[str, list[float]]] = {"users": {}, "items": {}}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    u_x = i_x = None
    for label, res in results.items():
        u_x, u_hr = hit_rate_by_user_bucket(res.per_user[f"HR@{k}"], data.train, n_buckets)
        i_x, i_hr = hit_rate_by_item_bucket(res.top_k, data.test, data.train, k=k, n_buckets=n_buckets)
        coldness["users"][label] = u_hr.tolist()
        coldness["items"][label] = i_hr.tolist()
        axes[0].plot(range(n_buckets), u_hr, marker="o", label=label)
        axes[1].plot(range(n_buckets), i_hr, marker="o", label=label)
    if u_x is not None:
        axes[0].set_xticks(range(n_buckets), [f"{x:.1f}" for x in u_x])
        axes[1].set_xticks(range(n_buckets), [f"{x:.1f}" for x in i_x])
    axes[0].set_xlabel("user bucket (mean train interactions)")
    axes[1].set_xlabel("item bucket (mean train popularity)")
    for ax in axes:
        ax.set_ylabel(f"test HR@{k} (%)")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, coldness


def plot_degree_distributions(datasets: Mapping[str, Any], *, normalise: bool = True, title: str = "") -> Figure:
    """Log–log CCDF of the user and of the item degrees of several datasets, one line per dataset.

    Draws notebook 08's comparison of ``netflix-shape`` with ML-1M (and the Netflix Prize when available):
    with ``normalise`` the degrees are divided by each dataset's mean degree, so datasets of different sizes
    with the same shape of distribution draw the same curve.

    Args:
        datasets: name → :class:`~infae_kit.data.RecDataset` (train ∪ val ∪ test) or interaction matrix, in
            legend order.
        normalise: divide the degrees by their mean (x axis "degree / mean degree").
        title: figure title.

    Returns:
        The matplotlib Figure: panel 1 users, panel 2 items.
    """
    import matplotlib.pyplot as plt

    from infae_kit.data.stats import degree_ccdf, interaction_degrees

    if not datasets:
        raise ParameterError("plot_degree_distributions needs at least one dataset.")
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
    for name, data in datasets.items():
        for ax, degree in zip(axes, interaction_degrees(data)):
            degree = degree[degree > 0]  # a log axis has no zero
            x, ccdf = degree_ccdf(degree, normalise=normalise)
            ax.plot(x, ccdf, label=str(name), lw=1.6)
    for ax, who in zip(axes, ("users", "items")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("degree / mean degree" if normalise else "degree (interactions)")
        ax.set_ylabel("fraction with degree ≥ x")
        ax.set_title(f"Degrees of the {who}", fontsize="medium")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(loc="lower left")
    if title:
        fig.suptitle(title)
    return fig
