"""Cost of landmark and exact ∞-AE against the number of users: fit time and peak memory, one process per size.

* :func:`measure_fit_cost` — one fit on a seeded subset of users, in this process (after a warm-up fit that
  compiles the block shapes), with the process's peak RSS.
* :func:`cost_against_users` — that for each model and size, each in a fresh process
  (``python -m infae_kit.scale.cost``) so that each peak RSS is its own; every process memory-maps the dataset's
  user-rows cache (:mod:`infae_kit.scale.rows_cache`) and reads only its subset's rows.
* :func:`fitted_exponent` — ``k`` of ``time ∝ users^k`` by least squares on log–log.

Used by notebook 08 and ``benchmarks/bench_scale.py``. The device is JAX's default backend (a GPU when present).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Sequence

import numpy as np
import numpy.typing as npt

from infae_kit.errors import MemoryBudgetError, ParameterError
from infae_kit.io_utils import peak_rss_bytes

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset
    from infae_kit.scale.rows_cache import CachedUserRows

__all__ = ["measure_fit_cost", "cost_against_users", "fitted_exponent", "rows_cache_for"]


def measure_fit_cost(data: RecDataset | CachedUserRows, model: str, n_users: int, *, landmarks: int = 1000,
                     selection: str = "uniform", block_users: int = 8192, dtype: npt.DTypeLike = "float32",
                     subset_seed: int = 0) -> dict:
    """Fit time (s) of one model on a seeded subset of ``n_users`` users, in this process, after a warm-up fit
    that compiles the block shapes; with the process's peak RSS. Run it in a fresh process for a per-size peak.

    Returns:
      ``{"model", "users", "items", "nnz", "fit_s" | "skipped", "peak_rss_gb", "backend", "devices", "device_kind"}``.
    """
    import jax

    from infae_kit.models.infinite_ae import InfiniteAE
    from infae_kit.models.landmark import LandmarkInfiniteAE
    from infae_kit.scale.sharding import ShardedEngine

    if model not in ("landmark", "exact"):
        raise ParameterError(f"model must be 'landmark' or 'exact', got {model!r}")
    n = min(int(n_users), data.n_users)
    idx = np.sort(np.random.default_rng(subset_seed).choice(data.n_users, size=n, replace=False))
    X = data.train[idx]
    out = {"model": model, "users": n, "items": int(data.n_items), "nnz": int(X.nnz),
           "backend": jax.default_backend(), "devices": len(jax.devices()), "device_kind": jax.devices()[0].device_kind}
    if model == "landmark":
        engine = ShardedEngine()
        make = lambda: LandmarkInfiniteAE(lam=5.0, landmarks=min(landmarks, n), selection=selection,  # noqa: E731
                                          block_users=block_users, dtype=dtype, engine=engine)
        make().fit(X[: min(n, block_users)])
        t = time.perf_counter()
        make().fit(X)
        out["fit_s"] = time.perf_counter() - t
        out["landmarks"] = min(landmarks, n)
    else:
        try:
            InfiniteAE(lam=5.0, dtype=dtype).fit(X[: min(n, 256)])
            t = time.perf_counter()
            InfiniteAE(lam=5.0, dtype=dtype).fit(X)
            out["fit_s"] = time.perf_counter() - t
        except MemoryBudgetError as exc:
            out["skipped"] = str(exc)
    out["peak_rss_gb"] = peak_rss_bytes() / 1e9
    return out


def rows_cache_for(dataset: str, seed: int = 42, options: dict | None = None) -> CachedUserRows:
    """The dataset's user-rows cache under ``<runs>/scale_cache`` (built on first use)."""
    from infae_kit.data import load_dataset
    from infae_kit.scale.rows_cache import cache_folder, ensure_user_rows

    return ensure_user_rows(cache_folder(dataset, seed, options),
                            lambda: load_dataset(dataset, seed=seed, **dict(options or {})))


def cost_against_users(dataset: str, user_counts: Sequence[int], *, models: Sequence[str] = ("landmark", "exact"),
                       landmarks: int = 1000, selection: str = "uniform", block_users: int = 8192,
                       dtype: npt.DTypeLike = "float32", seed: int = 42, dataset_options: dict | None = None,
                       progress: bool = True) -> list[dict]:
    """:func:`measure_fit_cost` for each model and number of users, each in a fresh Python process.

    Exact ∞-AE is skipped (row with ``"skipped"``) where its memory guard refuses, and not tried at larger sizes.

    Returns:
      The rows of :func:`measure_fit_cost`, model by model, sizes increasing.
    """
    options = dict(dataset_options or {})
    data = rows_cache_for(dataset, seed, options)  # built once here; the workers memory-map it
    sizes = sorted({min(int(u), data.n_users) for u in user_counts})
    rows = []
    for model in models:
        refused = False
        for n in sizes:
            if refused:
                rows.append({"model": model, "users": n, "skipped": "a smaller size was already refused"})
                continue
            cmd = [sys.executable, "-m", "infae_kit.scale.cost", "--dataset", dataset, "--seed", str(seed),
                   "--model", model, "--users", str(n), "--landmarks", str(landmarks), "--selection", selection,
                   "--block-users", str(block_users), "--dtype", str(np.dtype(dtype)),
                   "--options", json.dumps(options)]
            run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            if run.returncode != 0:
                raise RuntimeError(f"measuring {model} at {n} users failed:\n{run.stderr[-3000:]}")
            row = json.loads(run.stdout.strip().splitlines()[-1])
            refused = "skipped" in row
            rows.append(row)
            if progress:
                shown = f"{row['fit_s']:.2f} s" if "fit_s" in row else "skipped (memory guard)"
                print(f"{model:9s} {n:>9,} users: fit {shown}, peak RSS {row['peak_rss_gb']:.2f} GB", flush=True)
    return rows


def fitted_exponent(rows: Sequence[dict], model: str) -> float | None:
    """``k`` of ``fit_s ∝ users^k`` over ``model``'s measured rows (``None`` with fewer than two)."""
    pts = [(r["users"], r["fit_s"]) for r in rows if r.get("model") == model and r.get("fit_s", 0) > 0]
    if len(pts) < 2:
        return None
    return float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="measure one fit (used by cost_against_users)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--options", default="{}")
    ap.add_argument("--model", required=True, choices=["landmark", "exact"])
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--landmarks", type=int, default=1000)
    ap.add_argument("--selection", default="uniform")
    ap.add_argument("--block-users", type=int, default=8192)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args(argv)
    data = rows_cache_for(args.dataset, args.seed, json.loads(args.options))
    print(json.dumps(measure_fit_cost(data, args.model, args.users, landmarks=args.landmarks,
                                      selection=args.selection, block_users=args.block_users, dtype=args.dtype)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
