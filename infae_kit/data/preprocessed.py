"""The paper's preprocessed format: ``total_data.hdf5`` (ratings) + ``index.npz`` (split labels)."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from infae_kit.data.dataset import VALID_LABELS, Interactions, RecDataset, build_rec_dataset
from infae_kit.errors import DataError, DataFormatError

__all__ = [
    "read_preprocessed_interactions",
    "load_preprocessed",
]


def _damaged(path: Path, kind: str, err: BaseException) -> DataFormatError:
    """The error for a file that exists but cannot be parsed: names it, its size, the parser's reason, the fix."""
    try:
        size = f"{path.stat().st_size:,} bytes"
    except OSError:
        size = "size unknown"
    reason = f"{type(err).__name__}: {err}".strip().rstrip(":")
    return DataFormatError(
        f"{path} ({size}) cannot be read as {kind} ({reason}). The file is damaged or incomplete (an "
        "interrupted copy or download?). Fix: replace it with a complete copy of the file.",
        path=path,
    )


def read_preprocessed_interactions(hdf5_path: str | os.PathLike, index_path: str | os.PathLike) -> Interactions:
    """The labelled long table stored in the paper's files.

    Args:
        hdf5_path: ``total_data.hdf5`` with 1-D datasets ``user``, ``item``, ``rating`` and optionally ``time``.
        index_path: ``index.npz`` with key ``data``: one label per hdf5 row (0/1/2, −1 removed).

    Returns:
        Interactions with the original ids of the hdf5, float32 ratings, int64 timestamps (when ``time``
        exists) and int8 labels.

    Raises:
        DataFormatError: missing dataset/key, arrays of different lengths, labels outside {−1, 0, 1, 2}.
    """
    import h5py

    hdf5_path, index_path = Path(hdf5_path), Path(index_path)
    try:
        fh = h5py.File(hdf5_path, "r")
    except FileNotFoundError:
        raise
    except OSError as err:  # h5py's error for a truncated or non-HDF5 file
        raise _damaged(hdf5_path, "HDF5", err) from None
    with fh:
        missing = [k for k in ("user", "item") if k not in fh]
        if missing:
            raise DataFormatError(f"{hdf5_path} lacks the dataset(s) {missing}; found {sorted(fh.keys())}.")
        try:
            arrays = {k: np.asarray(fh[k][()]).ravel() for k in ("user", "item", "rating", "time") if k in fh}
        except (OSError, KeyError, ValueError) as err:  # a file cut inside a dataset's chunks
            raise _damaged(hdf5_path, "HDF5", err) from None
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DataFormatError(f"{hdf5_path}: datasets have different lengths {lengths}; they must be aligned.")
    try:
        npz = np.load(index_path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:  # truncated, empty or not an archive
        raise _damaged(index_path, "a NumPy .npz archive", err) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{index_path} holds a single array, not a .npz archive with the key 'data'.")
    with npz:
        if "data" not in npz.files:
            raise DataFormatError(f"{index_path} lacks the key 'data' (found {npz.files}).")
        try:
            label = np.asarray(npz["data"]).ravel()
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
            raise _damaged(index_path, "a NumPy .npz archive", err) from None
    n_rows = arrays["user"].shape[0]
    if label.shape[0] != n_rows:
        raise DataFormatError(
            f"{index_path} has {label.shape[0]:,} labels but {hdf5_path} has {n_rows:,} rows; the two files must "
            "come from the same release (one label per rating row)."
        )
    bad = ~np.isin(label, VALID_LABELS)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        values = np.unique(label[bad])[:10].tolist()
        raise DataFormatError(
            f"{index_path}: labels must be -1, 0, 1 or 2; found {values} ({int(bad.sum())} rows, first at row {first})."
        )
    return Interactions(
        user=arrays["user"].astype(np.int64),
        item=arrays["item"].astype(np.int64),
        rating=arrays.get("rating"),
        timestamp=arrays.get("time"),
        label=label.astype(np.int8),
        source=f"{hdf5_path} + {index_path}",
    )


def load_preprocessed(
    hdf5_path: str | os.PathLike, index_path: str | os.PathLike, name: str | None = None, *, repeats: str = "collapse"
) -> RecDataset:
    """A :class:`RecDataset` from the paper's ``total_data.hdf5`` + ``index.npz``, as the paper's code builds it.

    −1 rows are dropped, the remaining user and item ids are remapped to ``0..n-1`` (sorted original ids),
    and each split becomes a binary CSR matrix (repeated pairs collapse to one 1; see ``n_duplicate_pairs``).

    Args:
        hdf5_path: ``total_data.hdf5``.
        index_path: ``index.npz``.
        name: dataset name (defaults to the hdf5's folder name).
        repeats: ``"collapse"`` (binary, default) or ``"count"`` (the paper's code); see ``build_rec_dataset``.

    Returns:
        RecDataset with ``seed=None`` (fixed split).
    """
    interactions = read_preprocessed_interactions(hdf5_path, index_path)
    if len(interactions) == 0:
        raise DataError(f"{hdf5_path} holds no rows.")
    return build_rec_dataset(interactions, name=name or Path(hdf5_path).parent.name, seed=None, repeats=repeats)
