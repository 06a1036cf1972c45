"""Build and cache the Netflix-shaped fractal expansions of ML-1M; print build time, peak memory and statistics.

    python benchmarks/bench_fractal.py [--datasets netflix-shape-small netflix-shape] [--fresh] [--seed 42]

Each dataset is built (or, when its cache file is there, loaded) in a fresh process whose wall time and peak
resident memory are measured, then loaded from the cache in another fresh process. The statistics against
ML-1M (users, items, interactions, density, degree quartiles, Kolmogorov–Smirnov distance of the
mean-normalised degree distributions; ``infae_kit.data.stats.degree_comparison``) are printed as a table.
``--fresh`` builds into a temporary cache folder (timing a build even when the kit's cache already holds the
data); without it the kit's cache (``$INFAE_CACHE_DIR`` or ``~/.cache/infae_kit``) is filled, which is what
``make netflix-shape`` does. Results go to ``benchmarks/results/fractal.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info, peak_rss_bytes  # noqa: E402

CHILD = """
import json, os, sys, time
sys.path.insert(0, {here!r})
from _machine import peak_rss_bytes
start = time.perf_counter()
from infae_kit.data import load_dataset
from infae_kit.data.fractal import fractal_cache_path, fractal_dataset
name, seed, cache_dir = {name!r}, {seed}, {cache_dir!r}
path = fractal_cache_path(name, seed, cache_dir)
before = path.stat().st_mtime_ns if path.exists() else None
source = load_dataset("ml-1m")
t_source = time.perf_counter()
ds = fractal_dataset(name, source, seed=seed, cache_dir=cache_dir)
end = time.perf_counter()
union_nnz = ds.train.nnz + ds.val.nnz + ds.test.nnz
print(json.dumps({{"seconds": end - t_source, "wall_s": end - start, "peak_rss_bytes": peak_rss_bytes(),
    "from_cache": before is not None and path.exists() and path.stat().st_mtime_ns == before,
    "users": ds.n_users, "items": ds.n_items, "stored_entries": union_nnz, "cache_file": str(path),
    "cache_bytes": path.stat().st_size if path.exists() else None}}))
"""


def run_child(name: str, seed: int, cache_dir: str) -> dict:
    code = CHILD.format(here=str(HERE), name=name, seed=seed, cache_dir=cache_dir)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"building {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["netflix-shape-small", "netflix-shape"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--fresh", action="store_true", help="build into a temporary cache folder")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    from infae_kit import paths
    from infae_kit.data import load_dataset
    from infae_kit.data.fractal import fractal_dataset
    from infae_kit.data.stats import degree_comparison, degree_table
    from infae_kit.io_utils import atomic_write_json

    scratch = tempfile.TemporaryDirectory(prefix="infae-fractal-") if args.fresh else None
    cache_dir = scratch.name if scratch else str(paths.cache_dir())
    runs = {}
    for name in args.datasets:
        build = run_child(name, args.seed, cache_dir)
        load = run_child(name, args.seed, cache_dir)
        runs[name] = {"build": build, "load_from_cache": load}
        verb = "loaded from the cache" if build["from_cache"] else "built"
        print(f"{name}: {verb} in {build['seconds']:.1f} s (peak RSS {build['peak_rss_bytes'] / 1e9:.2f} GB); "
              f"from the cache in a new process: {load['seconds']:.1f} s (peak RSS "
              f"{load['peak_rss_bytes'] / 1e9:.2f} GB); cache file {build['cache_bytes'] / 1e6:.0f} MB",
              flush=True)
    source = load_dataset("ml-1m")
    datasets = {"ml-1m": source}
    for name in args.datasets:
        datasets[name] = fractal_dataset(name, source, seed=args.seed, cache_dir=cache_dir)
    comparison = degree_comparison(datasets, reference="ml-1m")
    print(degree_table(comparison))
    atomic_write_json(args.out / "fractal.json", {
        "seed": args.seed, "fresh": args.fresh, "runs": runs, "statistics": comparison,
        "machine": machine_info(), "parent_peak_rss_bytes": peak_rss_bytes(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
    if scratch:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
