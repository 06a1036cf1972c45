"""The on-disk cache of distilled supports: a run keyed by its config and the data's fingerprint, resumable."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from infae_kit.caching import data_name, dataset_fingerprint, entry_path, set_aside
from infae_kit.distill.artifact import (
    CARD_NAME,
    SUPPORT_NAME,
    DistillResult,
    load_distilled,
)
from infae_kit.distill.config import DistillConfig
from infae_kit.distill.loop import distill
from infae_kit.errors import DamagedFileError

__all__ = [
    "distill_cache_path",
    "distill_cached",
]

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset


def distill_cache_path(data: RecDataset, config: DistillConfig, cache_dir: str | os.PathLike) -> Path:
    """``cache_dir/<dataset>-mu<μ>-<12 hex>``, the hex a hash of the config and the dataset fingerprint
    (:func:`infae_kit.caching.entry_path`)."""
    key = {"config": config.to_dict(), "data": dataset_fingerprint(data)}
    return entry_path(cache_dir, f"{data_name(data)}-mu{config.budget}", key)


def distill_cached(data: RecDataset, config: DistillConfig, cache_dir: str | os.PathLike, *, progress: bool = True,
                   checkpoint_every: int = 20, reuse: bool = True) -> tuple[DistillResult, bool]:
    """:func:`distill`, or the support an earlier identical run saved: ``(result, loaded_from_cache)``.

    The run's directory is :func:`distill_cache_path`; it holds the artifact (``support.npz`` +
    ``datacard.json``, written last and atomically) and, while the run is going, checkpoints every
    ``checkpoint_every`` steps in ``checkpoint/``, so an interrupted run resumes where it stopped (and ends
    where an uninterrupted run ends). A cached result has no ``prior``. ``reuse=False`` deletes that directory
    first (artifact and checkpoints) and distils again from scratch. A damaged artifact or checkpoint (a
    truncated ``support.npz``, ``datacard.json``, ``checkpoint.json`` or ``ckpt_*.npz``) is set aside as
    ``<name>.damaged-<timestamp>`` with a warning naming it, and the run continues from the last good checkpoint
    (from scratch if there is none).
    """
    path = distill_cache_path(data, config, cache_dir)
    if not reuse and path.exists():
        shutil.rmtree(path)
    if (path / CARD_NAME).exists() and (path / SUPPORT_NAME).exists():
        try:
            return load_distilled(path), True
        except DamagedFileError as exc:
            set_aside(exc.path, exc.reason)
    run_config = config if config.checkpoint_every else dataclasses.replace(config, checkpoint_every=checkpoint_every)
    result = distill(data, run_config, progress=progress, checkpoint_dir=path / "checkpoint", resume=True)
    result.config = config
    result.save(path)
    return result, False
