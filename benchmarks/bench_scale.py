"""Benchmark: landmark ∞-AE fit time and peak memory against the number of users, at a fixed number of landmarks.

    python benchmarks/bench_scale.py --dataset ml-1m --landmarks 1000 --users 500,1000,2000,4000,6040 [--exact]
    python benchmarks/bench_scale.py --dataset synthetic --dataset-option n_users=100000 --users 10000,30000,100000

Each size is measured in a fresh process (so that its peak RSS is its own) on a seeded subset of the users, read
from the memory-mapped user-rows cache (:mod:`infae_kit.scale.rows_cache`; only the subset's rows are touched).
A fit is: landmark selection, the streamed normal equations over every user of the subset, one float64 solve; a
warm-up fit on one block compiles the kernels first, so the timings are steady-state. ``--exact`` also fits
exact ∞-AE where its memory guard allows. The fitted exponent ``t ∝ users^k`` (least squares on log–log) is
reported for each model.

The device is JAX's default backend: the same command runs unchanged on a GPU (``jax.default_backend()`` is
recorded). Writes ``benchmarks/results/scale-<dataset>.json`` atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info, peak_rss_bytes, current_rss_bytes  # noqa: E402

from infae_kit.scale.cli import parse_dataset_options  # noqa: E402


def _cache(args):
    from infae_kit.data import load_dataset
    from infae_kit.paths import runs_dir
    from infae_kit.scale.rows_cache import cache_key, ensure_user_rows

    options = parse_dataset_options(args.dataset_option)
    folder = runs_dir() / "scale_cache" / cache_key(args.dataset, args.seed, options, 50, 42)
    return ensure_user_rows(folder, lambda: load_dataset(args.dataset, seed=args.seed, **options))


def worker(args) -> dict:
    """One size, one model, in this process: returns the timings and memory as a dict."""
    import jax
    import numpy as np

    from infae_kit.errors import MemoryBudgetError

    data = _cache(args)
    n = min(args.worker_users, data.n_users)
    idx = np.sort(np.random.default_rng(0).choice(data.n_users, size=n, replace=False))
    X = data.train[idx]
    rss_before = current_rss_bytes()
    out = {"model": args.worker, "users": int(n), "items": data.n_items, "nnz": int(X.nnz),
           "backend": jax.default_backend(), "devices": len(jax.devices()),
           "device_kind": jax.devices()[0].device_kind}
    if args.worker == "landmark":
        from infae_kit.models.landmark import LandmarkInfiniteAE
        from infae_kit.scale.sharding import ShardedEngine

        engine = ShardedEngine()
        make = lambda: LandmarkInfiniteAE(lam=5.0, landmarks=min(args.landmarks, n), selection=args.selection,  # noqa: E731
                                          block_users=args.block_users, dtype=args.dtype, engine=engine)
        make().fit(X[: min(n, args.block_users)])  # warm-up: compiles the block shapes
        t = time.perf_counter()
        model = make().fit(X)
        out["fit_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model.predict(X[: min(n, 2000)])
        out["predict_2000_users_s"] = time.perf_counter() - t
        out["landmarks"] = model.basis_.m
    else:
        from infae_kit.models.infinite_ae import InfiniteAE

        try:
            InfiniteAE(lam=5.0, dtype=args.dtype).fit(X[: min(n, 256)])  # warm-up
            t = time.perf_counter()
            InfiniteAE(lam=5.0, dtype=args.dtype).fit(X)
            out["fit_s"] = time.perf_counter() - t
        except MemoryBudgetError as exc:
            out["skipped"] = str(exc)
    out["peak_rss_gb"] = peak_rss_bytes() / 1e9
    out["rss_before_fit_gb"] = rss_before / 1e9
    return out


def _exponent(rows: list[dict]) -> float | None:
    import numpy as np

    pts = [(r["users"], r["fit_s"]) for r in rows if "fit_s" in r and r["fit_s"] > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--landmarks", type=int, default=1000)
    ap.add_argument("--selection", default="uniform", choices=["uniform", "kmeans++", "leverage"])
    ap.add_argument("--block-users", type=int, default=8192)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--users", default="500,1000,2000,4000,6040", help="user counts, comma separated")
    ap.add_argument("--exact", action="store_true", help="also time exact ∞-AE where it fits")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--tag", default="", help="suffix of the result file (e.g. -gpu)")
    ap.add_argument("--worker", choices=["landmark", "exact"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-users", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    from infae_kit.io_utils import atomic_write_json

    t_start = time.perf_counter()
    data = _cache(args)  # built once here, read by every worker
    sizes = sorted({min(int(u), data.n_users) for u in args.users.split(",")})
    models = ["landmark"] + (["exact"] if args.exact else [])
    rows: dict[str, list[dict]] = {m: [] for m in models}
    passthrough = ["--dataset", args.dataset, "--seed", str(args.seed), "--landmarks", str(args.landmarks),
                   "--selection", args.selection, "--block-users", str(args.block_users), "--dtype", args.dtype]
    for opt in args.dataset_option:
        passthrough += ["--dataset-option", opt]
    print(f"scale benchmark on {args.dataset} ({data.n_users:,} users × {data.n_items:,} items), m={args.landmarks}, "
          f"blocks of {args.block_users:,}")
    for model in models:
        for n in sizes:
            run = subprocess.run([sys.executable, __file__, *passthrough, "--worker", model, "--worker-users", str(n)],
                                 capture_output=True, text=True, env=dict(os.environ))
            if run.returncode != 0:
                sys.stderr.write(run.stderr[-3000:])
                raise SystemExit(f"worker {model} at {n} users failed (exit {run.returncode})")
            row = json.loads(run.stdout.strip().splitlines()[-1])
            rows[model].append(row)
            shown = f"{row['fit_s']:8.2f} s" if "fit_s" in row else "  skipped (memory guard)"
            print(f"{model:9s} {n:>9,} users: fit {shown}, peak RSS {row['peak_rss_gb']:.2f} GB "
                  f"[{row['backend']}, {row['devices']} device(s)]", flush=True)
    exponents = {m: _exponent(r) for m, r in rows.items()}
    print("fitted exponent (time ∝ users^k): " + ", ".join(f"{m} k={e:.3f}" if e is not None else f"{m} —"
                                                         for m, e in exponents.items()))
    backend = rows["landmark"][0]["backend"]
    record = {"dataset": args.dataset, "dataset_options": parse_dataset_options(args.dataset_option),
              "n_users": data.n_users, "n_items": data.n_items, "landmarks": args.landmarks,
              "selection": args.selection, "block_users": args.block_users, "dtype": args.dtype,
              "backend": backend, "device_kind": rows["landmark"][0]["device_kind"], "rows": rows,
              "exponents": exponents, "wall_s": time.perf_counter() - t_start, "machine": machine_info(),
              "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    path = atomic_write_json(args.out / f"scale-{args.dataset}{args.tag}.json", record)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
