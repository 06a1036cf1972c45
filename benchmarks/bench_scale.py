"""Benchmark: landmark ∞-AE fit time and peak memory against the number of users, at a fixed number of landmarks.

    python benchmarks/bench_scale.py --dataset ml-1m --landmarks 1000 --users 500,1000,2000,4000,6040 --exact
    python benchmarks/bench_scale.py --dataset synthetic --dataset-option n_users=100000 --users 10000,30000,100000

Each size is measured in a fresh process (:func:`infae_kit.scale.cost.cost_against_users`, so that its peak RSS
is its own) on a seeded subset of the users, read from the memory-mapped user-rows cache (only the subset's
rows are touched). A fit is: landmark selection, the streamed normal equations over every user of the subset,
the float64 solve; a warm-up fit on one block compiles the kernels first. ``--exact`` also fits exact ∞-AE
where its memory guard allows. The fitted exponent ``t ∝ users^k`` (least squares on log–log) is reported.

The device is JAX's default backend: the same command runs unchanged on a GPU (``jax.default_backend()`` is
recorded). Writes ``benchmarks/results/scale-<dataset><tag>.json`` atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info  # noqa: E402

from infae_kit.io_utils import atomic_write_json  # noqa: E402
from infae_kit.scale.cli import parse_dataset_options  # noqa: E402
from infae_kit.scale.cost import cost_against_users, fitted_exponent, rows_cache_for  # noqa: E402


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
    ap.add_argument("--tag", default="", help="suffix of the result file, e.g. --tag=-gpu")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    options = parse_dataset_options(args.dataset_option)
    data = rows_cache_for(args.dataset, args.seed, options)
    print(f"scale benchmark on {args.dataset} ({data.n_users:,} users × {data.n_items:,} items), m={args.landmarks}, "
          f"blocks of {args.block_users:,}", flush=True)
    models = ("landmark", "exact") if args.exact else ("landmark",)
    rows = cost_against_users(args.dataset, [int(u) for u in args.users.split(",")], models=models,
                              landmarks=args.landmarks, selection=args.selection, block_users=args.block_users,
                              dtype=args.dtype, seed=args.seed, dataset_options=options)
    exponents = {m: fitted_exponent(rows, m) for m in models}
    print("fitted exponent (time ∝ users^k): " + ", ".join(
        f"{m} k={e:.3f}" if e is not None else f"{m} —" for m, e in exponents.items()))
    first = next(r for r in rows if "backend" in r)
    record = {"dataset": args.dataset, "dataset_options": options, "n_users": data.n_users, "n_items": data.n_items,
              "landmarks": args.landmarks, "selection": args.selection, "block_users": args.block_users,
              "dtype": args.dtype, "backend": first["backend"], "device_kind": first["device_kind"], "rows": rows,
              "exponents": exponents, "wall_s": time.perf_counter() - t_start, "machine": machine_info(),
              "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    path = atomic_write_json(args.out / f"scale-{args.dataset}{args.tag}.json", record)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
