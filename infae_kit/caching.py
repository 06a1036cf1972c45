"""One home for what the kit's on-disk caches share: the data fingerprint, entry names and paths, format
checks, and what happens to a damaged entry.

Every cache of the kit (DISTILL-CF supports, sweep cells, SVP-CF forgetting counts, AR-CF generators,
continual-learning rows) keys an entry by a JSON-ready dict — the data's :func:`dataset_fingerprint`, the
configuration, the seed and the cache's format number — and stores it at :func:`entry_path`:
``<folder>/<label>-<12 hex>[suffix]``, the hex the start of the key's SHA-256 (:func:`key_digest`), the label
a readable prefix made file-name safe (:func:`safe_name`).

* **Formats.** A cache bumps its format number when an entry changes meaning; the number is part of the key,
  so an entry of another format is never read. :func:`check_cache_format` records the format in a marker file
  of the folder and warns once (:class:`CacheFormatWarning`) when the folder already holds entries written
  under another format: they are ignored and their results recomputed.
* **Damage.** An entry that cannot be read (truncated, not JSON, not an archive) is moved aside with
  :func:`set_aside` (renamed ``<name>.damaged-<UTC time>``, a :class:`DamagedCacheWarning` naming it) and
  recomputed; it is never fatal.

Example:
    >>> key = {"format": 2, "data": dataset_fingerprint(data), "seed": 0}       # doctest: +SKIP
    >>> entry_path("runs/cache", f"{data_name(data)}-svp-cf", key, ".npz")      # doctest: +SKIP
    PosixPath('runs/cache/ml-1m-svp-cf-3f2a9c1d0b7e.npz')
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from infae_kit.io_utils import atomic_write_json

__all__ = [
    "DIGEST_CHARS",
    "UNREADABLE_ERRORS",
    "CacheFormatWarning",
    "DamagedCacheWarning",
    "matrix_sha256",
    "item_ids_hash",
    "dataset_identity",
    "dataset_fingerprint",
    "data_name",
    "safe_name",
    "key_digest",
    "entry_path",
    "check_cache_format",
    "set_aside",
    "read_json_entry",
    "read_keyed_row",
    "write_keyed_row",
]

DIGEST_CHARS = 12
"""Hex characters of the key's SHA-256 in an entry's name."""
UNREADABLE_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)
"""What reading a damaged entry raises (truncated archive or JSON, missing array): catch these, then
:func:`set_aside` the entry."""
_MARKER_PREFIX = ".infae_cache-"


class CacheFormatWarning(UserWarning):
    """A cache folder holds entries of another format; they are ignored and recomputed."""


class DamagedCacheWarning(UserWarning):
    """A cache entry could not be read; it was moved aside and is recomputed."""


# ---------------------------------------------------------------------------------------------------------
# The data fingerprint
# ---------------------------------------------------------------------------------------------------------
def matrix_sha256(X: sp.spmatrix | np.ndarray) -> str:
    """SHA-256 of a matrix's CSR form: ``indptr`` and ``indices`` as int64, then ``data`` as float32.

    Args:
        X: ``(n_rows, n_cols)`` scipy.sparse matrix or dense array (converted to CSR as is: stored zeros and the
            order of the indices count, so pass a canonical matrix, e.g. the kit's binary CSR).

    Returns:
        64 hex characters. The shape is not hashed (:func:`dataset_fingerprint` records it).
    """
    csr = sp.csr_matrix(X)
    h = hashlib.sha256()
    for arr in (csr.indptr.astype(np.int64), csr.indices.astype(np.int64), csr.data.astype(np.float32)):
        h.update(arr.tobytes())
    return h.hexdigest()


def item_ids_hash(item_ids: Any) -> str:
    """SHA-256 of a dataset's item ids in column order (ties columns, e.g. a support's, to the dataset's items).

    Args:
        item_ids: ``(n_items,)`` ids of any type (hashed through ``str``).

    Returns:
        64 hex characters.
    """
    h = hashlib.sha256()
    h.update("\n".join(str(v) for v in np.asarray(item_ids).tolist()).encode("utf-8"))
    return h.hexdigest()


def dataset_identity(data: Any, train: sp.spmatrix) -> dict[str, Any]:
    """``name``, ``n_users``, ``n_items`` and ``item_ids_sha256`` (``None`` without item ids) of a dataset.

    Args:
        data: anything with optional ``name`` and ``item_ids`` attributes (a :class:`~infae_kit.data.RecDataset`).
        train: its ``(n_users, n_items)`` train matrix.
    """
    item_ids = getattr(data, "item_ids", None)
    return {"name": getattr(data, "name", ""), "n_users": int(train.shape[0]), "n_items": int(train.shape[1]),
            "item_ids_sha256": item_ids_hash(item_ids) if item_ids is not None else None}


def dataset_fingerprint(data: Any, *, name: str | None = None, item_ids: Any = None) -> dict[str, Any]:
    """What a cached result computed from a train matrix depends on: name, shape, item ids and the matrix.

    Args:
        data: a dataset (anything with ``train`` and optional ``name`` / ``item_ids``, e.g. a
            :class:`~infae_kit.data.RecDataset`) or a ``(n_users, n_items)`` matrix itself.
        name, item_ids: override (or, for a bare matrix, give) the dataset's name and ``(n_items,)`` item ids.

    Returns:
        ``{"name", "n_users", "n_items", "item_ids_sha256", "train_sha256"}`` (JSON-ready; the hashes from
        :func:`item_ids_hash` and :func:`matrix_sha256`).
    """
    if sp.issparse(data) or isinstance(data, np.ndarray):
        data = SimpleNamespace(train=data)
    if name is not None or item_ids is not None:
        data = SimpleNamespace(train=data.train,
                               name=getattr(data, "name", "") if name is None else name,
                               item_ids=getattr(data, "item_ids", None) if item_ids is None else item_ids)
    train = sp.csr_matrix(data.train)
    return dict(dataset_identity(data, train), train_sha256=matrix_sha256(train))


# ---------------------------------------------------------------------------------------------------------
# Entry names and paths
# ---------------------------------------------------------------------------------------------------------
def data_name(data: Any) -> str:
    """A dataset's ``name`` as a string, ``"data"`` when it has none (the usual start of an entry's label)."""
    return str(getattr(data, "name", "") or "data")


def safe_name(text: Any) -> str:
    """``text`` as a file-name part: every character but letters, digits, ``-``, ``_`` and ``.`` becomes ``_``.

    Empty text becomes ``"data"``.
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in (str(text) or "data"))


def key_digest(key: Mapping[str, Any], chars: int = DIGEST_CHARS) -> str:
    """The first ``chars`` hex characters of the SHA-256 of ``key`` as sorted-key JSON (non-JSON values via
    ``str``)."""
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:chars]


def entry_path(folder: str | os.PathLike, label: str, key: Mapping[str, Any], suffix: str = "") -> Path:
    """``folder/<safe label>-<key digest><suffix>``: where a cache keeps the entry of ``key``.

    Args:
        folder: the cache folder.
        label: readable prefix (dataset, method, budget…), passed through :func:`safe_name`.
        key: everything the entry depends on (JSON-ready dict), hashed by :func:`key_digest`.
        suffix: file extension with its dot (``".json"``), or ``""`` for a folder entry.
    """
    return Path(folder) / f"{safe_name(label)}-{key_digest(key)}{suffix}"


# ---------------------------------------------------------------------------------------------------------
# Formats and damaged entries
# ---------------------------------------------------------------------------------------------------------
def check_cache_format(folder: str | os.PathLike, kind: str, version: int, pattern: str = "*") -> Path:
    """Record that ``folder`` holds ``kind`` entries of format ``version``; warn once about other formats.

    The format is kept (as JSON) in ``folder/.infae_cache-<kind>.format``. When that marker is missing or names
    another format while entries matching ``pattern`` are already there, those entries were written by another
    version of the kit: a :class:`CacheFormatWarning` says so (they are never read — the format is part of every key —
    and what they held is recomputed when asked for). The marker is then written, so the warning comes once.

    Args:
        folder: the cache folder (created when missing).
        kind: name of the cache (``"sweep-cells"``, ``"svp-cf"``…), a file-name safe word.
        version: the format this version of the kit writes.
        pattern: glob of the folder's entries of this kind.

    Returns:
        ``folder`` as a :class:`~pathlib.Path`.
    """
    folder = Path(folder)
    marker = folder / f"{_MARKER_PREFIX}{safe_name(kind)}.format"
    recorded = None
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            recorded = None
    if recorded == version:
        return folder
    entries = [p for p in folder.glob(pattern) if not p.name.startswith(".")] if folder.is_dir() else []
    if entries:
        written = f"format {recorded}" if recorded is not None else f"a format before {version}"
        warnings.warn(CacheFormatWarning(
            f"{folder} holds {len(entries)} {kind} cache entries in {written}; this version of infae_kit writes "
            f"format {version}, so they are not read and their results are recomputed when needed. Delete the "
            f"old entries to reclaim the space (those older than {marker.name})."), stacklevel=2)
    atomic_write_json(marker, {"kind": kind, "format": version})
    return folder


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a damaged cache entry (file or folder) aside as ``<name>.damaged-<UTC time>`` and warn.

    The caller then recomputes the entry. The damaged copy is kept for inspection; delete it at will.

    Args:
        path: the entry that could not be read.
        reason: what was wrong (goes into the :class:`DamagedCacheWarning`).

    Returns:
        The new path of the damaged entry.
    """
    path = Path(path)
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}")
    os.replace(path, target)
    warnings.warn(DamagedCacheWarning(f"{path} could not be read ({reason}); set aside as {target.name} and "
                                      "recomputed."), stacklevel=2)
    return target


def read_json_entry(path: str | os.PathLike) -> Any:
    """The JSON value stored in ``path``; ``None`` when there is no such file or it is damaged (then set aside).

    Args:
        path: a cache entry written with :func:`infae_kit.io_utils.atomic_write_json`.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        set_aside(path, f"not valid JSON: {exc}")
        return None


def read_keyed_row(path: str | os.PathLike, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``row`` of an entry written by :func:`write_keyed_row` for this very ``key``; ``None`` when there is no
    such file, it is damaged (then set aside) or it holds another key (as JSON compares it: non-JSON values via
    ``str``)."""
    record = read_json_entry(path)
    if isinstance(record, dict) and record.get("key") == json.loads(json.dumps(key, default=str)):
        return dict(record["row"])
    return None


def write_keyed_row(path: str | os.PathLike, key: Mapping[str, Any], row: Mapping[str, Any]) -> Path:
    """Write ``{"key": key, "row": row}`` to ``path`` atomically (read back by :func:`read_keyed_row`)."""
    return atomic_write_json(path, {"key": key, "row": row})
