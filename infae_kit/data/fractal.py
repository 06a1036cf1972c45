"""Fractal (randomised Kronecker) expansion of an interaction matrix, and the Netflix-shaped ML-1M expansions.

Belletti et al. 2019 ("Scalable Realistic Recommendation Datasets through Fractal Expansions", arXiv:1901.08910;
the expansion MLPerf uses to grow MovieLens-20M) build a large users × items matrix from a real one, ``R``
(``m × n``), in two steps:

1. **Reduction** (their Algorithm 2): a small ``p × q`` matrix ``R̂`` with the largest singular values of ``R``:
   the top ``k = min(p, q)`` singular vectors of ``R`` are resized (averaged over consecutive users and items) to
   ``p × k`` and ``q × k``, replaced by the closest matrices with orthonormal columns, and recombined with the
   top singular values; ``|R̂|`` is scaled into ``[0, 1]``. :func:`reduced_seed_matrix`.
2. **Randomised Kronecker product** (their Algorithm 1): the ``(p·m) × (q·n)`` matrix whose block ``(a, b)`` is
   ``F(r̂_ab, R)``: a copy of ``R`` whose rows and columns are shuffled by permutations drawn for that block,
   keeping each interaction with probability ``r̂_ab``. A plain Kronecker product ``R̂ ⊗ R`` would repeat every
   user of ``R`` ``p`` times; the shuffles make every expanded user a mix of ``q`` different users of ``R``, and
   the block densities ``r̂_ab`` (from the spectrum of ``R``) spread the degrees. :func:`fractal_expand`.

Here ``R̂`` is scaled so that the expansion has a chosen number of interactions (:func:`keep_probabilities`)
instead of being divided by its maximum, and block ``(a, b)`` keeps exactly ``round(r̂_ab · nnz(R))``
interactions (a uniformly random subset, as MLPerf's implementation does), so the size is exact. Every block
draws from its own ``numpy`` generator seeded by ``(seed, a, b)``: the result is a deterministic function of
``R``, the keep matrix, the shuffle mode and the seed, and does not depend on the order blocks are built in.

The registry's ``netflix-shape`` is ML-1M (6,040 × 3,706, 1,000,209 interactions) expanded by an 80 × 5 seed to
483,200 users × at most 18,530 items with the Netflix Prize's 100,480,507 interactions (to within
``p · q / 2``, the rounding of the blocks); ``netflix-shape-small``
uses an 8 × 5 seed (48,320 users, a tenth of the interactions). Both are split with the paper's per-user rule
(:func:`~infae_kit.data.split.split_labels_csr`) and cached under ``infae_kit.paths.cache_dir()/fractal``
(:func:`fractal_dataset`), keyed by a fingerprint of the source matrix, the expansion and the seed.

They permute the rows of every block but not its columns (``shuffle="rows"``): with Belletti et al.'s column
shuffles, expanded item ``(b, i)`` is a different item of ``R`` in each of the ``p`` row blocks, so an item's
popularity is the sum of ``p`` random items' and the long tail of item popularity flattens (on
``netflix-shape-small``: Kolmogorov–Smirnov distance 0.30 between its mean-normalised item degrees and ML-1M's,
against 0.03 without column shuffles; ``degree_shape_distance``), and the item–item co-occurrences of ``R`` are
averaged over ``p`` relabellings. Without them, item ``(b, i)`` is item ``i`` of ML-1M in every row block, and an
expanded user still joins ``q`` different users of ``R`` (one per column block), so no user is a repetition.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from infae_kit import paths
from infae_kit.checks import MatrixLike, binary_interactions, is_int
from infae_kit.data.dataset import RecDataset, rec_dataset_from_csr
from infae_kit.data.split import split_labels_csr
from infae_kit.errors import DataError, MemoryBudgetError, ParameterError
from infae_kit.caching import set_aside
from infae_kit.io_utils import atomic_write_stream, available_memory_bytes

__all__ = [
    "FRACTAL_FORMAT",
    "FRACTAL_SPECS",
    "SHUFFLE_MODES",
    "FractalSpec",
    "block_keep_counts",
    "build_memory_bytes",
    "fractal_cache_path",
    "fractal_dataset",
    "fractal_expand",
    "keep_probabilities",
    "reduced_seed_matrix",
    "resize_rows",
]

logger = logging.getLogger(__name__)

FRACTAL_FORMAT = 1
"""Version of the generator's output; a cache file written by another version is rebuilt."""

SHUFFLE_MODES = ("rows+columns", "rows", "none")
"""``rows+columns``: every block permutes the rows and the columns of ``R`` (Belletti et al.'s ``F``);
``rows``: every block permutes the rows only (an expanded item is always the same item of ``R``); ``none``: no
permutation (with a keep matrix of ones this is the plain Kronecker product ``1 ⊗ R``)."""


@dataclass(frozen=True)
class FractalSpec:
    """A registered fractal expansion.

    Attributes:
        name: registry name.
        source: registry name of the dataset that is expanded (its train ∪ val ∪ test interactions).
        seed_shape: ``(p, q)``: the number of row blocks (users × p) and column blocks (items × q).
        n_interactions: target number of interactions of the expansion (met to within ``p·q/2``).
        shuffle: one of :data:`SHUFFLE_MODES`.
        description: what it is, for the registry.
    """

    name: str
    source: str
    seed_shape: tuple[int, int]
    n_interactions: int
    shuffle: str = "rows+columns"
    description: str = ""


NETFLIX_PRIZE_RATINGS = 100_480_507

FRACTAL_SPECS: dict[str, FractalSpec] = {
    "netflix-shape": FractalSpec(
        "netflix-shape", "ml-1m", (80, 5), NETFLIX_PRIZE_RATINGS, shuffle="rows",
        description=(
            "Fractal expansion (Belletti et al. 2019; rows shuffled per block) of ML-1M by an 80 × 5 seed to the "
            "Netflix Prize's shape: 483,200 users × up to 18,530 items, 100,480,507 interactions (Netflix: 480,189 "
            "× 17,770, same count), split with the paper's per-user rule. Generated on demand from ML-1M, cached."
        ),
    ),
    "netflix-shape-small": FractalSpec(
        "netflix-shape-small", "ml-1m", (8, 5), NETFLIX_PRIZE_RATINGS // 10, shuffle="rows",
        description=(
            "netflix-shape at a tenth of the users: ML-1M expanded by an 8 × 5 seed to 48,320 users × up to "
            "18,530 items, 10,048,050 interactions, split with the paper's per-user rule. Generated on demand "
            "and cached."
        ),
    ),
}


def _check_shape(shape, name: str = "seed_shape") -> tuple[int, int]:
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2 or not all(is_int(v) and v >= 1 for v in shape)):
        raise ParameterError(f"{name} must be a pair of positive integers (row blocks, column blocks), got {shape!r}.")
    return int(shape[0]), int(shape[1])


def resize_rows(M: np.ndarray, n_rows: int) -> np.ndarray:
    """Resize ``M`` along its first axis by area averaging (the mean of ``M`` over equal-width row intervals).

    Row ``i`` of the result is the average of ``M`` over the rows ``[i·m/n_rows, (i+1)·m/n_rows)`` of ``M``
    (fractional rows weighted by their overlap), i.e. ``M`` seen as a piecewise-constant function of ``[0, m)``
    and averaged on ``n_rows`` equal cells; when ``n_rows > m`` rows are repeated.

    Args:
        M: (m, k) array.
        n_rows: number of rows of the result.

    Returns:
        (n_rows, k) float64 array.
    """
    M = np.asarray(M, dtype=np.float64)
    m = M.shape[0]
    if m == 0 or not is_int(n_rows) or n_rows < 1:
        raise ParameterError(f"resize_rows needs a non-empty matrix and n_rows ≥ 1, got {M.shape} and {n_rows!r}.")
    cumulative = np.zeros((m + 1,) + M.shape[1:], dtype=np.float64)
    np.cumsum(M, axis=0, out=cumulative[1:])
    edges = np.arange(n_rows + 1, dtype=np.float64) * (m / n_rows)
    whole = np.minimum(np.floor(edges).astype(np.int64), m)
    frac = (edges - whole)[:, None] if M.ndim > 1 else edges - whole
    at_edge = cumulative[whole] + frac * M[np.minimum(whole, m - 1)]  # integral of M over [0, edge)
    return np.diff(at_edge, axis=0) / (m / n_rows)


def _closest_orthonormal_columns(M: np.ndarray) -> np.ndarray:
    """The matrix with orthonormal columns nearest to ``M`` in Frobenius norm (the polar factor ``U Vᵀ``)."""
    left, _, right = np.linalg.svd(M, full_matrices=False)
    return left @ right


def _top_singular_triplets(R: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(U, s, V)``: the ``k`` largest singular values of ``R`` (decreasing) and their (m, k), (n, k) vectors."""
    if k >= min(R.shape) - 1 or R.shape[0] * R.shape[1] <= 4_000_000:
        U, s, Vt = np.linalg.svd(R.toarray().astype(np.float64), full_matrices=False)
        return U[:, :k], s[:k], Vt[:k].T
    from scipy.sparse.linalg import svds

    v0 = np.full(min(R.shape), 1.0 / np.sqrt(min(R.shape)))  # fixed start vector: deterministic
    U, s, Vt = svds(R.astype(np.float64), k=k, v0=v0, solver="arpack")
    order = np.argsort(s)[::-1]
    return U[:, order], s[order], Vt[order].T


def reduced_seed_matrix(R: MatrixLike, shape: tuple[int, int]) -> np.ndarray:
    """Belletti et al.'s reduction of ``R`` to a small ``p × q`` matrix with its largest singular values.

    The top ``k = min(p, q)`` singular triplets ``(U, s, V)`` of ``R`` are computed; ``U`` (m × k) and ``V``
    (n × k) are resized to ``p × k`` and ``q × k`` (:func:`resize_rows`, area averaging over consecutive rows)
    and replaced by the nearest matrices with orthonormal columns ``Û``, ``V̂``; the result is
    ``|Û diag(s) V̂ᵀ|`` divided by its maximum (``Û diag(s) V̂ᵀ`` itself has exactly the top ``k`` singular
    values of ``R``). A flip of the sign of a singular pair leaves it unchanged, so it is deterministic.

    Args:
        R: (m, n) interactions (sparse or dense, non-negative; binarised).
        shape: ``(p, q)`` with ``min(p, q) < min(m, n)``.

    Returns:
        (p, q) float64 matrix with values in ``[0, 1]`` and maximum 1.

    Raises:
        ParameterError: a bad shape; DataError: ``R`` has no interaction.
    """
    p, q = _check_shape(shape)
    R = binary_interactions(R, "R", require_interactions=True)
    k = min(p, q)
    if k >= min(R.shape):
        raise ParameterError(f"seed shape {shape} needs k = min(p, q) = {k} < min{R.shape} = {min(R.shape)}.")
    U, s, V = _top_singular_triplets(R, k)
    U_small = _closest_orthonormal_columns(resize_rows(U, p))
    V_small = _closest_orthonormal_columns(resize_rows(V, q))
    reduced = np.abs((U_small * s) @ V_small.T)
    top = reduced.max()
    if not np.isfinite(top) or top <= 0:
        raise DataError(
            f"The reduction of the {R.shape[0]} × {R.shape[1]} matrix is zero: it cannot seed an expansion."
        )
    return reduced / top


def keep_probabilities(seed_matrix: np.ndarray, mean: float) -> np.ndarray:
    """``min(1, c · seed_matrix)`` with the scale ``c`` chosen so that its mean is ``mean``.

    The keep probability of block ``(a, b)`` of the expansion: the expansion of a matrix with ``nnz``
    interactions by this seed has ``mean · p · q · nnz`` interactions. Blocks keep the relative densities of
    the seed, except where ``c · r̂_ab`` exceeds 1 (those blocks are copied whole, and the scale rises to make up).

    Args:
        seed_matrix: (p, q) non-negative, not all zero (e.g. :func:`reduced_seed_matrix`).
        mean: target mean keep probability, in ``(0, 1]``.

    Returns:
        (p, q) float64 in ``[0, 1]`` with mean ``mean`` (to 1e-12).

    Raises:
        ParameterError: ``mean`` outside ``(0, 1]``, a negative or all-zero seed, or a mean the seed cannot reach
            (more zero blocks than ``1 − mean`` allows).
    """
    seed_matrix = np.asarray(seed_matrix, dtype=np.float64)
    if seed_matrix.ndim != 2 or seed_matrix.size == 0 or not np.isfinite(seed_matrix).all() or (seed_matrix < 0).any():
        raise ParameterError("seed_matrix must be a non-empty 2-D array of finite values ≥ 0.")
    mean = float(mean)
    if not 0.0 < mean <= 1.0:
        raise ParameterError(
            f"The mean keep probability must be in (0, 1], got {mean:.4g}: the expansion cannot have more "
            "interactions than p · q copies of the source. Ask for fewer interactions or a larger seed shape."
        )
    reachable = float((seed_matrix > 0).mean())
    if mean > reachable + 1e-12:
        raise ParameterError(
            f"The seed matrix has {int((seed_matrix == 0).sum())} zero blocks of {seed_matrix.size}, so the mean "
            f"keep probability cannot exceed {reachable:.4g} (asked {mean:.4g})."
        )
    low, high = 0.0, mean / max(seed_matrix[seed_matrix > 0].min(), 1e-300)
    for _ in range(200):  # mean(min(1, c·seed)) is continuous and non-decreasing in c
        mid = 0.5 * (low + high)
        if np.minimum(1.0, mid * seed_matrix).mean() < mean:
            low = mid
        else:
            high = mid
    return np.minimum(1.0, high * seed_matrix)


def block_keep_counts(keep: np.ndarray, nnz: int) -> np.ndarray:
    """(p, q) int64 number of interactions each block keeps: ``round(keep · nnz)``."""
    keep = np.asarray(keep, dtype=np.float64)
    if keep.ndim != 2 or keep.size == 0 or not np.isfinite(keep).all() or (keep < 0).any() or (keep > 1).any():
        raise ParameterError("keep must be a non-empty 2-D array of probabilities in [0, 1].")
    return np.rint(keep * int(nnz)).astype(np.int64)


def _block_rng(seed: int, a: int, b: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(a, b)))


def _uniform_subset(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(k,) sorted indices of a uniformly random k-subset of ``range(n)``.

    A Bernoulli(k/n) draw, then a uniformly random few of its members removed (or of the others added) to
    reach exactly k: conditioned on its size a Bernoulli subset is uniform, and the correction treats every
    index alike, so the result is uniform over the k-subsets. One pass over ``n`` floats, without the
    partial shuffle of ``Generator.choice(n, k, replace=False)``.
    """
    if k >= n:
        return np.arange(n)
    mask = rng.random(n) < k / n
    drawn = int(np.count_nonzero(mask))
    if drawn > k:
        members = np.flatnonzero(mask)
        mask[members[rng.choice(drawn, drawn - k, replace=False)]] = False
    elif drawn < k:
        others = np.flatnonzero(~mask)
        mask[others[rng.choice(n - drawn, k - drawn, replace=False)]] = True
    return np.flatnonzero(mask)


def fractal_expand(R: MatrixLike, keep: np.ndarray, *, seed: int = 0, shuffle: str = "rows+columns") -> sp.csr_matrix:
    """The randomised Kronecker product of a keep matrix and ``R`` (Belletti et al.'s Algorithm 1).

    Block ``(a, b)`` (rows ``a·m … a·m + m − 1``, columns ``b·n … b·n + n − 1``) holds
    ``round(keep[a, b] · nnz(R))`` interactions of ``R`` (a uniformly random subset), their rows
    and/or columns moved by permutations drawn for that block (``shuffle``). Built one row block at a time
    with int32 indices: the result holds 5 bytes an interaction, the build about twice that at its end.

    Args:
        R: (m, n) interactions (sparse or dense; binarised).
        keep: (p, q) keep probabilities in ``[0, 1]`` (e.g. :func:`keep_probabilities`).
        seed: seed; block ``(a, b)`` draws from ``SeedSequence(seed, spawn_key=(a, b))``.
        shuffle: one of :data:`SHUFFLE_MODES`.

    Returns:
        (p·m, q·n) CSR with int8 ones, int32 indices sorted within rows, no repeated entry.

    Raises:
        ParameterError: a bad ``keep``, ``shuffle`` or ``seed``; DataError: an empty ``R``.
    """
    if shuffle not in SHUFFLE_MODES:
        raise ParameterError(f"shuffle must be one of {SHUFFLE_MODES}, got {shuffle!r}.")
    if not is_int(seed) or seed < 0:
        raise ParameterError(f"seed must be an integer ≥ 0, got {seed!r}.")
    R = binary_interactions(R, "R", require_interactions=True)
    m, n = R.shape
    nnz = int(R.nnz)
    counts = block_keep_counts(keep, nnz)
    p, q = counts.shape
    if p * m >= np.iinfo(np.int32).max or q * n >= np.iinfo(np.int32).max:
        raise ParameterError(f"An expansion of {p * m} × {q * n} does not fit int32 indices; use a smaller seed.")
    src_row = np.repeat(np.arange(m, dtype=np.int32), np.diff(R.indptr))
    src_col = R.indices.astype(np.int32)
    n_cols = q * n
    shift = max(int(n_cols - 1).bit_length(), 1)  # an entry's sort key: local row << shift | column
    if int(m).bit_length() + shift > 62:
        raise ParameterError(f"R of shape {R.shape} expanded to {n_cols} columns is too large for 64-bit sort keys.")
    row_starts = np.arange(m + 1, dtype=np.int64) << shift
    chunks: list[np.ndarray] = []
    row_counts = np.zeros(p * m, dtype=np.int64)
    for a in range(p):
        keys = []
        for b in range(q):
            rng = _block_rng(int(seed), a, b)
            row_perm = rng.permutation(m) if shuffle != "none" else np.arange(m)
            col_perm = rng.permutation(n) if shuffle == "rows+columns" else np.arange(n)
            count = int(counts[a, b])
            if count == 0:
                continue
            chosen = _uniform_subset(rng, nnz, count)
            row_key = row_perm.astype(np.int64) << shift  # (m,) key of each source row in this block
            col_key = col_perm.astype(np.int64) + b * n
            keys.append(row_key[src_row[chosen]] + col_key[src_col[chosen]])
        if not keys:
            continue
        key = np.concatenate(keys)
        del keys
        key.sort()
        row_counts[a * m:(a + 1) * m] = np.diff(np.searchsorted(key, row_starts))
        key &= (1 << shift) - 1
        chunks.append(key.astype(np.int32))
        del key
    indptr = np.zeros(p * m + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    indices = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    del chunks
    index_dtype = np.int32 if indices.shape[0] < np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix((np.ones(indices.shape[0], dtype=np.int8), indices, indptr.astype(index_dtype)),
                      shape=(p * m, n_cols))
    X.has_sorted_indices = True
    return X


# ---------------------------------------------------------------------------------------------------------
# Registered expansions: build, split, cache
# ---------------------------------------------------------------------------------------------------------


BUILD_BYTES_PER_INTERACTION = 28
"""Peak memory of :func:`fractal_dataset`'s build per interaction of the expansion, interpreter included
(measured: 2.63 GB for netflix-shape's 100.5M interactions, 0.45 GB for netflix-shape-small's 10M)."""


def build_memory_bytes(n_interactions: int) -> int:
    """Bytes a build of an expansion with ``n_interactions`` interactions holds at its peak (an estimate)."""
    return int(BUILD_BYTES_PER_INTERACTION * n_interactions + 200 * 2**20)


def _matrix_fingerprint(R: sp.csr_matrix) -> str:
    digest = hashlib.sha256()
    digest.update(np.asarray(R.shape, dtype=np.int64).tobytes())
    digest.update(np.asarray(R.indptr, dtype=np.int64).tobytes())
    digest.update(np.asarray(R.indices, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _cache_key(spec: FractalSpec, source_fingerprint: str, seed: int) -> dict[str, Any]:
    return {"format": FRACTAL_FORMAT, "spec": asdict(spec), "source": source_fingerprint, "seed": int(seed)}


def fractal_cache_path(name: str, seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/fractal/<name>-seed<seed>.npz`` (``cache_dir`` defaults to :func:`infae_kit.paths.cache_dir`)."""
    root = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    return root / "fractal" / f"{name}-seed{int(seed)}.npz"


_SPLIT_NAMES = ("train", "val", "test")


def _write_cache(path: Path, ds: RecDataset, key: dict[str, Any], info: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for split in _SPLIT_NAMES:
        mat = getattr(ds, split)
        arrays[f"{split}_indptr"] = mat.indptr
        arrays[f"{split}_indices"] = mat.indices
    arrays["user_ids"], arrays["item_ids"] = ds.user_ids, ds.item_ids
    arrays["counts"] = np.array([ds.n_removed_users, ds.n_duplicate_pairs], dtype=np.int64)
    arrays["key"] = np.array(json.dumps(key, sort_keys=True))
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    atomic_write_stream(path, lambda fh: np.savez(fh, **arrays))


def _set_aside_and_warn(path: Path, why: str) -> None:
    try:
        set_aside(path, why)  # warns with a DamagedCacheWarning naming both paths
    except FileNotFoundError:  # another process set it aside first
        return


def _read_cache(path: Path, key: dict[str, Any], name: str) -> tuple[RecDataset, dict[str, Any]] | None:
    """The cached dataset, or ``None`` after setting aside a file that is damaged or holds another key."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key = json.loads(str(npz["key"]))
            if stored_key != json.loads(json.dumps(key, sort_keys=True)):
                _set_aside_and_warn(path, "it was built from other inputs")
                return None
            info = json.loads(str(npz["info"]))
            user_ids, item_ids = npz["user_ids"], npz["item_ids"]
            n_removed, n_dup = (int(v) for v in npz["counts"])
            shape = (user_ids.shape[0], item_ids.shape[0])
            mats = {}
            for split in _SPLIT_NAMES:
                indptr, indices = npz[f"{split}_indptr"], npz[f"{split}_indices"]
                if indptr.shape != (shape[0] + 1,) or int(indptr[-1]) != indices.shape[0]:
                    raise ValueError(f"{split} arrays do not fit a {shape} matrix")
                mats[split] = sp.csr_matrix((np.ones(indices.shape[0], dtype=np.float32), indices, indptr),
                                            shape=shape)
                mats[split].has_sorted_indices = True
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        _set_aside_and_warn(path, f"unreadable: {exc}")
        return None
    ds = RecDataset(name=name, train=mats["train"], val=mats["val"], test=mats["test"], user_ids=user_ids,
                    item_ids=item_ids, interactions=None, n_removed_users=n_removed, n_duplicate_pairs=n_dup,
                    seed=int(key["seed"]), source=info.get("source", ""))
    return ds, info


def fractal_dataset(
    spec: FractalSpec | str,
    source: RecDataset,
    *,
    seed: int = 42,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> RecDataset:
    """The expansion ``spec`` of ``source``, split with the paper's per-user rule, from the cache when it is there.

    Build: :func:`reduced_seed_matrix` of ``source``'s train ∪ val ∪ test interactions at ``spec.seed_shape``,
    :func:`keep_probabilities` for ``spec.n_interactions``, :func:`fractal_expand` with ``seed``, then
    :func:`~infae_kit.data.split.split_labels_csr` with ``seed``. Expanded user ``a·m + u`` is row ``u`` of row
    block ``a`` (item ``b·n + i`` likewise); those are the ``user_ids`` / ``item_ids`` of the result.

    Cache: ``fractal_cache_path(spec.name, seed, cache_dir)``, written atomically, holding the split matrices
    and a key (generator version :data:`FRACTAL_FORMAT`, the spec, a SHA-256 of the source matrix, the seed).
    A file that cannot be read is renamed ``*.damaged``, one with another key ``*.stale``, and the dataset is
    rebuilt.

    Args:
        spec: a :class:`FractalSpec` or a name in :data:`FRACTAL_SPECS`.
        source: the dataset to expand (its users × items matrix is ``R``).
        seed: seed of the expansion and of the split.
        cache: read and write the cache.
        cache_dir: the cache root (default :func:`infae_kit.paths.cache_dir`).

    Returns:
        RecDataset named ``spec.name`` (no ``interactions`` table). Building logs the time it took.

    Raises:
        ParameterError: unknown spec name, bad seed, or a target the seed shape cannot reach.
        MemoryBudgetError: a build would need more memory than is available (:func:`build_memory_bytes`).
    """
    if isinstance(spec, str):
        if spec not in FRACTAL_SPECS:
            raise ParameterError(f"Unknown fractal expansion {spec!r}; known: {sorted(FRACTAL_SPECS)}.")
        spec = FRACTAL_SPECS[spec]
    if not is_int(seed) or seed < 0:
        raise ParameterError(f"seed must be an integer ≥ 0, got {seed!r}.")
    R = source.all_positives()
    key = _cache_key(spec, _matrix_fingerprint(R), seed)
    path = fractal_cache_path(spec.name, seed, cache_dir)
    if cache and path.exists():
        cached = _read_cache(path, key, spec.name)
        if cached is not None:
            return cached[0]
    need, have = build_memory_bytes(spec.n_interactions), available_memory_bytes()
    if need > have:
        raise MemoryBudgetError(
            f"Building {spec.name!r} ({spec.n_interactions:,} interactions) needs about {need / 2**30:.1f} GiB at "
            f"its peak, but only {have / 2**30:.1f} GiB is available. Free memory, or use a smaller expansion "
            "(netflix-shape-small has a tenth of the interactions)."
        )
    start = time.perf_counter()
    p, q = _check_shape(spec.seed_shape)
    keep = keep_probabilities(reduced_seed_matrix(R, (p, q)), spec.n_interactions / (p * q * R.nnz))
    X = fractal_expand(R, keep, seed=seed, shuffle=spec.shuffle)
    labels = split_labels_csr(X, seed)
    m, n = R.shape
    description = (f"fractal expansion of {source.name} ({m} × {n}, {R.nnz} interactions) by a {p} × {q} seed, "
                   f"shuffle={spec.shuffle}, seed={seed}")
    ds = rec_dataset_from_csr(X, labels, name=spec.name, user_ids=np.arange(p * m, dtype=np.int64),
                              item_ids=np.arange(q * n, dtype=np.int64), seed=seed, source=description)
    n_interactions = int(X.nnz)
    del X, labels
    seconds = time.perf_counter() - start
    logger.info("%s: built %d × %d with %d interactions in %.1f s.", spec.name, ds.n_users, ds.n_items,
                n_interactions, seconds)
    if cache:
        info = {"source": description, "build_seconds": round(seconds, 2), "keep": keep.round(6).tolist(),
                "expanded_interactions": n_interactions}
        try:
            _write_cache(path, ds, key, info)
        except OSError as exc:  # a read-only or full cache folder: the dataset is still returned
            logger.warning("Could not write the cache file %s (%s); the dataset is not cached.", path, exc)
    return ds
