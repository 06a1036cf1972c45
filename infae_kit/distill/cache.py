"""The on-disk cache of distilled supports: a run keyed by its config and the data's fingerprint, resumable."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from infae_kit.caching import data_name, dataset_fingerprint, entry_path, set_aside
from infae_kit.checks import is_int
from infae_kit.distill.artifact import (
    CARD_NAME,
    CHECKPOINT_MANIFEST,
    SUPPORT_NAME,
    DistillResult,
    load_distilled,
)
from infae_kit.distill.config import DistillConfig
from infae_kit.distill.loop import continues_run, distill
from infae_kit.errors import DamagedFileError

__all__ = [
    "distill_cache_path",
    "distill_cached",
    "shorter_run",
]

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset


def distill_cache_path(data: RecDataset, config: DistillConfig, cache_dir: str | os.PathLike) -> Path:
    """``cache_dir/<dataset>-mu<μ>-<12 hex>``, the hex a hash of the config and the dataset fingerprint
    (:func:`infae_kit.caching.entry_path`)."""
    return _cache_path(data, config, cache_dir, dataset_fingerprint(data))


def _cache_path(data: RecDataset, config: DistillConfig, cache_dir: str | os.PathLike, fingerprint: dict) -> Path:
    """:func:`distill_cache_path` for the data's :func:`~infae_kit.caching.dataset_fingerprint`, computed once."""
    key = {"config": config.to_dict(), "data": fingerprint}
    return entry_path(cache_dir, f"{data_name(data)}-mu{config.budget}", key)


def shorter_run(data: RecDataset, config: DistillConfig, cache_dir: str | os.PathLike, *,
                fingerprint: dict | None = None) -> Path | None:
    """The cached run that ``config``'s run can continue: the same config and data with fewer ``steps``.

    Among the folders of ``cache_dir`` whose checkpoint manifest names fewer steps and whose cache path is
    :func:`distill_cache_path` of ``config`` with those steps (so the data and every other field match), the one
    whose checkpoint is furthest along, if :func:`~infae_kit.distill.loop.continues_run` accepts it; else None.
    ``fingerprint``: the data's :func:`~infae_kit.caching.dataset_fingerprint` if the caller has it (it hashes
    the whole train matrix), else computed here once.
    """
    best: tuple[int, Path] | None = None
    for folder in Path(cache_dir).glob(f"{data_name(data)}-mu{config.budget}-*"):
        try:
            state = json.loads((folder / "checkpoint" / CHECKPOINT_MANIFEST).read_text(encoding="utf-8"))
            steps = state["config"]["steps"]
            step = int(state["step"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if not is_int(steps) or not 0 < steps < config.steps:
            continue
        if fingerprint is None:
            fingerprint = dataset_fingerprint(data)
        if _cache_path(data, dataclasses.replace(config, steps=steps), cache_dir, fingerprint) != folder:
            continue
        run_config = dataclasses.replace(config, checkpoint_every=state["config"].get("checkpoint_every", 0))
        if continues_run(state, run_config) and (best is None or step > best[0]):
            best = (step, folder)
    return None if best is None else best[1]


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
    (from scratch if there is none). A run with more ``steps`` than a cached one of the same config and data
    continues that run's last checkpoint (copied; :func:`shorter_run`) instead of starting again.
    """
    fingerprint = dataset_fingerprint(data)
    path = _cache_path(data, config, cache_dir, fingerprint)
    if not reuse and path.exists():
        shutil.rmtree(path)
    if (path / CARD_NAME).exists() and (path / SUPPORT_NAME).exists():
        try:
            return load_distilled(path), True
        except DamagedFileError as exc:
            set_aside(exc.path, exc.reason)
    run_config = config if config.checkpoint_every else dataclasses.replace(config, checkpoint_every=checkpoint_every)
    if not (path / "checkpoint").exists():
        shorter = shorter_run(data, config, cache_dir, fingerprint=fingerprint)
        if shorter is not None:
            _copy_checkpoints(shorter / "checkpoint", path / "checkpoint")
    result = distill(data, run_config, progress=progress, checkpoint_dir=path / "checkpoint", resume=True)
    result.config = config
    result.save(path)
    return result, False


def _copy_checkpoints(source: Path, dest: Path) -> None:
    """Copy a run's checkpoint folder to ``dest`` (which must not exist): to a temporary sibling, then renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    os.replace(tmp, dest)
