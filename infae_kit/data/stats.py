"""The paper's Table 2 (data statistics): counts abbreviated as the paper prints them, one row per dataset.

The statistics of one dataset are :func:`infae_kit.data.dataset.dataset_statistics` (also
``RecDataset.summary()``)."""

from __future__ import annotations

import math
import os
from typing import Iterable

from infae_kit.data.dataset import RecDataset, dataset_statistics
from infae_kit.data.registry import load_dataset

__all__ = ["abbreviate_count", "statistics_table"]


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
