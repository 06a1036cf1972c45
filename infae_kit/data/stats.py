"""Dataset statistics and the paper's Table 2 (data statistics)."""

from __future__ import annotations

import math
import os
from typing import Any, Iterable

import numpy as np

from infae_kit.data.dataset import RecDataset


def dataset_statistics(ds: RecDataset) -> dict[str, Any]:
    """Statistics of a dataset.

    Returns:
        dict with ``name``, ``users``, ``items``, ``interactions`` (distinct (user, item) pairs over
        train ∪ val ∪ test), ``sparsity`` (1 − interactions / (users · items)), ``train``/``val``/``test``
        (non-zeros of each binary matrix), ``rows`` (kept rating rows, repeats included, when the long table
        is known), ``users_removed``, ``duplicates_collapsed`` (``n_duplicate_pairs``), ``pairs_in_several_splits``
        and ``interactions_per_user_min/median/max`` (distinct pairs per user).
    """
    union = ds.all_positives()
    per_user = np.diff(union.indptr)
    n_pairs = int(union.nnz)
    cells = ds.n_users * ds.n_items
    rows = None
    if ds.interactions is not None and ds.interactions.label is not None:
        rows = int((ds.interactions.label >= 0).sum())
    return {
        "name": ds.name,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": n_pairs,
        "sparsity": 1.0 - n_pairs / cells if cells else float("nan"),
        "train": int(ds.train.nnz),
        "val": int(ds.val.nnz),
        "test": int(ds.test.nnz),
        "rows": rows,
        "users_removed": int(ds.n_removed_users),
        "duplicates_collapsed": int(ds.n_duplicate_pairs),
        "pairs_in_several_splits": int(ds.train.nnz + ds.val.nnz + ds.test.nnz - n_pairs),
        "interactions_per_user_min": int(per_user.min()) if per_user.size else 0,
        "interactions_per_user_median": float(np.median(per_user)) if per_user.size else 0.0,
        "interactions_per_user_max": int(per_user.max()) if per_user.size else 0,
        "seed": ds.seed,
    }


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
    from infae_kit.data.registry import load_dataset

    lines = ["| Dataset | # Users | # Items | # Interactions | Sparsity |", "| --- | ---: | ---: | ---: | ---: |"]
    for entry in names:
        ds = entry if isinstance(entry, RecDataset) else load_dataset(entry, data_dir=data_dir, seed=seed)
        st = dataset_statistics(ds)
        lines.append(
            f"| {ds.name} | {abbreviate_count(st['users'])} | {abbreviate_count(st['items'])} | "
            f"{abbreviate_count(st['interactions'])} | {100 * st['sparsity']:.1f}% |"
        )
    return "\n".join(lines)
