"""The paper's Table 2 (data statistics) and the degree distributions that compare datasets' shapes.

Counts are abbreviated as the paper prints them, one row per dataset. The statistics of one dataset are
:func:`infae_kit.data.dataset.dataset_statistics` (also ``RecDataset.summary()``); the user and item degree
distributions (quantiles, CCDF, a shape distance) compare a generated dataset such as ``netflix-shape`` with
the one it was expanded from."""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, binary_interactions
from infae_kit.data.dataset import RecDataset, dataset_statistics
from infae_kit.data.registry import load_dataset
from infae_kit.errors import DataError, ParameterError

__all__ = [
    "DEGREE_QUANTILES",
    "abbreviate_count",
    "degree_ccdf",
    "degree_comparison",
    "degree_shape_distance",
    "degree_statistics",
    "degree_table",
    "interaction_degrees",
    "statistics_table",
]


def abbreviate_count(n: int) -> str:
    """A count the way the paper's Table 2 prints it: at least two significant digits, truncated.

    The paper truncates rather than rounds (17,770 → '17k', 1,278,328 → '1.2M'); values of 100 or more in
    the unit keep their integer part (480,189 → '480k').
    """
    if n < 1000:
        return str(int(n))
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            value = n / div
            digits = max(0, 1 - int(math.floor(math.log10(value))))
            scale = 10**digits
            truncated = math.floor(value * scale + 1e-9) / scale
            text = f"{truncated:.{digits}f}"
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return text + suffix
    return str(int(n))  # pragma: no cover


def statistics_table(
    names: Iterable[str] = ("magazine", "ml-1m"),
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 42,
) -> str:
    """Markdown table of the paper's Table 2 columns (# users, # items, # interactions, sparsity).

    Counts are abbreviated like the paper (two significant digits, truncated); sparsity is in percent with
    one decimal. Interactions are distinct (user, item) pairs over all splits.

    Args:
        names: registry names (or RecDataset objects).
        data_dir: data directory passed to :func:`~infae_kit.data.registry.load_dataset`.
        seed: split seed for raw datasets.
    """
    lines = ["| Dataset | # Users | # Items | # Interactions | Sparsity |", "| --- | ---: | ---: | ---: | ---: |"]
    for entry in names:
        ds = entry if isinstance(entry, RecDataset) else load_dataset(entry, data_dir=data_dir, seed=seed)
        st = dataset_statistics(ds)
        lines.append(
            f"| {ds.name} | {abbreviate_count(st['users'])} | {abbreviate_count(st['items'])} | "
            f"{abbreviate_count(st['interactions'])} | {100 * st['sparsity']:.1f}% |"
        )
    return "\n".join(lines)


DEGREE_QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
"""Quantiles of the user and item degrees that :func:`degree_statistics` reports."""


def _binary_union(data: RecDataset | MatrixLike) -> sp.csr_matrix:
    """The users × items interactions of a RecDataset (train ∪ val ∪ test) or of a matrix, binarised."""
    if isinstance(data, RecDataset):
        return data.all_positives()
    return binary_interactions(data, "data")


def interaction_degrees(data: RecDataset | MatrixLike) -> tuple[np.ndarray, np.ndarray]:
    """``(user_degree, item_degree)``: interactions of every user and of every item.

    Args:
        data: a :class:`RecDataset` (train ∪ val ∪ test) or a (n_users, n_items) interaction matrix.

    Returns:
        (n_users,) and (n_items,) int64 arrays.
    """
    X = _binary_union(data)
    return np.diff(X.indptr).astype(np.int64), np.bincount(X.indices, minlength=X.shape[1]).astype(np.int64)


def _degree_summary(degree: np.ndarray, quantiles: Iterable[float]) -> dict[str, float]:
    out = {"min": int(degree.min()), "mean": float(degree.mean()), "max": int(degree.max())}
    for level in quantiles:
        out[f"q{100 * level:g}"] = float(np.quantile(degree, level))
    return out


def degree_statistics(data: RecDataset | MatrixLike, quantiles: Iterable[float] = DEGREE_QUANTILES) -> dict[str, Any]:
    """Size, density and degree distributions of a dataset.

    Args:
        data: a :class:`RecDataset` (train ∪ val ∪ test) or a (n_users, n_items) interaction matrix.
        quantiles: levels in ``[0, 1]`` of the degree quantiles to report.

    Returns:
        dict with ``users``, ``items``, ``interactions``, ``density`` (interactions / (users · items)) and
        ``user_degree`` / ``item_degree``: ``min``, ``mean``, ``max`` and one ``q<percent>`` entry per quantile
        (``q50`` is the median).
    """
    quantiles = tuple(quantiles)
    if any(not 0.0 <= float(q) <= 1.0 for q in quantiles):
        raise ParameterError(f"quantiles must be in [0, 1], got {quantiles}.")
    user_degree, item_degree = interaction_degrees(data)
    n_users, n_items = user_degree.shape[0], item_degree.shape[0]
    n = int(user_degree.sum())
    return {
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "density": n / (n_users * n_items) if n_users * n_items else float("nan"),
        "user_degree": _degree_summary(user_degree, quantiles),
        "item_degree": _degree_summary(item_degree, quantiles),
    }


def degree_ccdf(degree: np.ndarray, normalise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The complementary cumulative distribution ``P(D ≥ x)`` of a degree sequence.

    Args:
        degree: (n,) degrees (users' or items').
        normalise: divide the degrees by their mean (to compare the shapes of datasets of different sizes).

    Returns:
        ``(x, ccdf)``: the distinct degree values in increasing order (divided by the mean when ``normalise``)
        and the fraction of degrees ``≥`` each; ``ccdf[0] == 1``.
    """
    degree = np.asarray(degree, dtype=np.float64).ravel()
    if degree.size == 0:
        raise DataError("degree_ccdf needs at least one degree.")
    values, counts = np.unique(degree, return_counts=True)
    ccdf = np.cumsum(counts[::-1])[::-1] / degree.size
    if normalise:
        mean = degree.mean()
        values = values / mean if mean > 0 else values
    return values, ccdf


def degree_shape_distance(reference: np.ndarray, degree: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between two degree distributions, each divided by its mean.

    0 when the two have the same shape up to scale (e.g. every degree multiplied by the same factor), 1 when
    they do not overlap. Used to say how well an expansion keeps the degree distribution of its source.

    Args:
        reference: (n,) degrees of the reference (e.g. ML-1M's users).
        degree: (n',) degrees to compare.

    Returns:
        ``max_x |F_ref(x) − F(x)|`` over the mean-normalised degrees, in ``[0, 1]``.
    """
    a = np.sort(np.asarray(reference, dtype=np.float64).ravel())
    b = np.sort(np.asarray(degree, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0 or a.mean() <= 0 or b.mean() <= 0:
        raise DataError("degree_shape_distance needs two non-empty degree sequences with a positive mean.")
    a, b = np.round(a / a.mean(), 9), np.round(b / b.mean(), 9)  # equal shapes give equal values, not 1 ulp apart
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


def degree_comparison(datasets: Mapping[str, Any], reference: str) -> dict[str, dict[str, Any]]:
    """:func:`degree_statistics` of several datasets, with the shape distance of each to a reference.

    Args:
        datasets: name → :class:`RecDataset` or interaction matrix (e.g. ``{"ml-1m": ..., "netflix-shape": ...}``).
        reference: the name in ``datasets`` the others are compared with.

    Returns:
        name → the :func:`degree_statistics` dict plus ``user_degree_ks`` and ``item_degree_ks``
        (:func:`degree_shape_distance` to the reference; 0 for the reference itself).
    """
    if reference not in datasets:
        raise ParameterError(f"reference {reference!r} is not one of the datasets {list(datasets)}.")
    degrees = {name: interaction_degrees(data) for name, data in datasets.items()}
    out = {}
    for name, data in datasets.items():
        stats = degree_statistics(data)
        stats["user_degree_ks"] = degree_shape_distance(degrees[reference][0], degrees[name][0])
        stats["item_degree_ks"] = degree_shape_distance(degrees[reference][1], degrees[name][1])
        out[name] = stats
    return out


def degree_table(comparison: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of :func:`degree_comparison`: size, density, degree quartiles and shape distances."""
    lines = [
        "| Dataset | Users | Items | Interactions | Density | User degree (q25 / q50 / q75 / max) | "
        "Item degree (q25 / q50 / q75 / max) | KS users | KS items |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, st in comparison.items():
        deg = {k: "{q25:g} / {q50:g} / {q75:g} / {max}".format(**st[k]) for k in ("user_degree", "item_degree")}
        lines.append(
            f"| {name} | {st['users']:,} | {st['items']:,} | {st['interactions']:,} | {100 * st['density']:.2f}% | "
            f"{deg['user_degree']} | {deg['item_degree']} | {st.get('user_degree_ks', float('nan')):.3f} | "
            f"{st.get('item_degree_ks', float('nan')):.3f} |"
        )
    return "\n".join(lines)
