"""A dataset laid out on disk so that each process reads only its own users' rows (memory-mapped CSR).

``{root}/{key}/`` holds, for each split (``train``, ``val``, ``test``), the CSR arrays ``{split}_indptr.npy``,
``{split}_indices.npy`` and ``{split}_data.npy``, plus ``negatives.npy`` (the AUC negatives), ``weights.npy``
(propensity weights from the train counts), ``user_ids.npy``, ``item_ids.npy`` and ``meta.json``. Opening it
memory-maps the arrays: slicing users ``a:b`` of a split then touches only ``indptr[a:b+1]`` and those users'
entries, so a process of a multi-process run reads its own share (plus the landmark rows), never the whole file.

The folder is written once (by process 0, under a temporary name, then renamed: a cache is complete or absent);
a cache that fails its checks is set aside as ``{key}.damaged-<time>`` and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from infae_kit.data.dataset import RecDataset
from infae_kit.errors import DataFormatError, ParameterError
from infae_kit.evaluation.protocol import propensity_weights_of
from infae_kit.io_utils import atomic_write_json

__all__ = ["CACHE_VERSION", "CachedUserRows", "cache_key", "cache_folder", "write_user_rows", "open_user_rows", "ensure_user_rows"]

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SPLITS = ("train", "val", "test")


def cache_key(dataset: str, seed: int, options: dict, n_negatives: int, negatives_seed: int) -> str:
    """Folder name of a dataset's cache: name, split seed, loader options and AUC-negative settings."""
    opts = "".join(f"-{k}={options[k]}" for k in sorted(options))
    return f"{dataset}-seed{seed}{opts}-neg{n_negatives}s{negatives_seed}-v{CACHE_VERSION}".replace("/", "_")


def cache_folder(dataset: str, seed: int = 42, options: dict | None = None, root: str | os.PathLike | None = None,
                 n_negatives: int = 50, negatives_seed: int = 42) -> Path:
    """Where a dataset's cache lives: ``root`` (default ``<runs>/scale_cache``) / :func:`cache_key`."""
    from infae_kit.paths import runs_dir

    base = Path(root) if root is not None else runs_dir() / "scale_cache"
    return base / cache_key(dataset, seed, dict(options or {}), n_negatives, negatives_seed)


@dataclass
class CachedUserRows:
    """A dataset opened from the cache: ``train``/``val``/``test`` are CSR matrices over memory-mapped arrays.

    It has the attributes :func:`~infae_kit.models.landmark.tune_and_evaluate_landmark` reads (``train``,
    ``val``, ``test``, ``n_users``, ``n_items``, ``auc_negatives``), plus ``weights`` (propensities).
    """

    name: str
    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    negatives: np.ndarray
    weights: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    def auc_negatives(self, n_negatives: int = 50, seed: int = 42) -> np.ndarray:
        """The cached AUC negatives (only the ``(n_negatives, seed)`` the cache was built with)."""
        if (int(n_negatives), int(seed)) != (self.meta["n_negatives"], self.meta["negatives_seed"]):
            raise ParameterError(
                f"this cache holds AUC negatives for n_negatives={self.meta['n_negatives']}, "
                f"seed={self.meta['negatives_seed']}, not ({n_negatives}, {seed}); build another cache."
            )
        return self.negatives


def write_user_rows(data: RecDataset, folder: str | os.PathLike, *, n_negatives: int = 50,
                    negatives_seed: int = 42) -> Path:
    """Write ``data`` as a user-rows cache at ``folder`` (atomically: a temporary folder renamed at the end)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        meta = {"version": CACHE_VERSION, "name": data.name, "shape": [data.n_users, data.n_items],
                "n_negatives": int(n_negatives), "negatives_seed": int(negatives_seed), "nnz": {}}
        for split in SPLITS:
            mat = sp.csr_matrix(getattr(data, split), dtype=np.float32)
            index_dtype = np.int32 if max(mat.nnz, max(mat.shape)) < 2**31 - 1 else np.int64
            np.save(tmp / f"{split}_indptr.npy", mat.indptr.astype(index_dtype))
            np.save(tmp / f"{split}_indices.npy", mat.indices.astype(index_dtype))
            np.save(tmp / f"{split}_data.npy", mat.data)
            meta["nnz"][split] = int(mat.nnz)
        np.save(tmp / "negatives.npy", data.auc_negatives(n_negatives, negatives_seed).astype(np.int32))
        np.save(tmp / "weights.npy", propensity_weights_of(data))
        np.save(tmp / "user_ids.npy", np.asarray(data.user_ids).astype(str if data.user_ids.dtype == object else data.user_ids.dtype))
        np.save(tmp / "item_ids.npy", np.asarray(data.item_ids).astype(str if data.item_ids.dtype == object else data.item_ids.dtype))
        atomic_write_json(tmp / "meta.json", meta)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def open_user_rows(folder: str | os.PathLike) -> CachedUserRows:
    """Open a cache written by :func:`write_user_rows` (memory-mapped; nothing is read until sliced).

    Raises:
      DataFormatError: missing or inconsistent files (names the file and what is wrong).
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{folder}/meta.json is missing or unreadable ({exc}).") from exc
    if meta.get("version") != CACHE_VERSION:
        raise DataFormatError(f"{folder}: cache version {meta.get('version')}, expected {CACHE_VERSION}.")
    n_users, n_items = meta["shape"]

    def load(name, length=None, rows=None):
        path = folder / f"{name}.npy"
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataFormatError(f"{path} is missing or damaged ({exc}).") from exc
        if length is not None and arr.shape[0] != length:
            raise DataFormatError(f"{path} has {arr.shape[0]} entries, expected {length}.")
        if rows is not None and arr.shape != rows:
            raise DataFormatError(f"{path} has shape {arr.shape}, expected {rows}.")
        return arr

    mats = {}
    for split in SPLITS:
        indptr = load(f"{split}_indptr", n_users + 1)
        nnz = meta["nnz"][split]
        if int(indptr[-1]) != nnz:
            raise DataFormatError(f"{folder}/{split}_indptr.npy ends at {int(indptr[-1])}, expected nnz {nnz}.")
        mats[split] = sp.csr_matrix((load(f"{split}_data", nnz), load(f"{split}_indices", nnz), indptr),
                                    shape=(n_users, n_items), copy=False)
    return CachedUserRows(meta["name"], mats["train"], mats["val"], mats["test"], load("user_ids", n_users),
                          load("item_ids", n_items), load("negatives", rows=(n_users, meta["n_negatives"])),
                          np.asarray(load("weights", n_items)), meta)


def ensure_user_rows(folder: str | os.PathLike, build: Callable[[], RecDataset], *, n_negatives: int = 50,
                     negatives_seed: int = 42) -> CachedUserRows:
    """Open the cache at ``folder``, building it with ``build()`` (→ RecDataset) when missing; a damaged one is
    set aside as ``<folder>.damaged-<time>`` and rebuilt."""
    folder = Path(folder)
    if folder.exists():
        try:
            return open_user_rows(folder)
        except DataFormatError as exc:
            aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            log.warning("user-rows cache %s is damaged (%s); moved to %s and rebuilt", folder, exc, aside)
            os.replace(folder, aside)
    write_user_rows(build(), folder, n_negatives=n_negatives, negatives_seed=negatives_seed)
    return open_user_rows(folder)
