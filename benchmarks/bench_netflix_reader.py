"""Throughput and peak memory of the Netflix Prize loader on a generated fixture, extrapolated to the full set.

    python benchmarks/bench_netflix_reader.py [--ratings 10000000] [--keep DIR]

A fixture in the Prize's exact layout (``training_set/mv_<7 digits>.txt``: ``MovieID:`` then
``CustomerID,Rating,YYYY-MM-DD`` lines) is written to a temporary folder (deleted afterwards unless ``--keep``):
``--ratings`` ratings over the same number of ratings per movie file as the Prize (100,480,507 ratings in
17,770 files, 5,655 a file on average, log-normal file sizes), customer ids drawn from 480,189 ids in
1..2,649,429, dates from 1999-11-11 to 2005-12-31. Nothing of it is committed.

Then, each in a fresh process with its wall time and peak resident memory measured:

* ``read_netflix_csr`` (parse and transpose to the customers × movies int32 CSR) on all files and on half of
  them;
* ``load_dataset("netflix", path=...)`` (parse, the paper's split, train / val / test CSR matrices) on all
  files and on half;
* the interpreter with numpy, scipy and the kit imported (the memory every run starts from).

Time and memory are fitted as ``a + b · ratings`` through the two sizes and extrapolated to the Prize's
100,480,507 ratings. Results go to ``benchmarks/results/netflix_reader.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info  # noqa: E402

PRIZE_RATINGS = 100_480_507
PRIZE_FILES = 17_770
PRIZE_CUSTOMERS = 480_189
MAX_CUSTOMER_ID = 2_649_429

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
from _machine import peak_rss_bytes
import numpy, scipy.sparse
from infae_kit.data import load_dataset
from infae_kit.data.readers import read_netflix_csr
start = time.perf_counter()
task, folder, max_movies = {task!r}, {folder!r}, {max_movies!r}
out = {{}}
if task == "csr":
    X, customers, movies = read_netflix_csr(folder, max_movies=max_movies)
    out.update(stored=int(X.nnz), customers=int(X.shape[0]), movies=int(X.shape[1]))
elif task == "dataset":
    ds = load_dataset("netflix", path=folder, max_movies=max_movies, seed=0)
    out.update(stored=int(ds.train.nnz + ds.val.nnz + ds.test.nnz), customers=ds.n_users, movies=ds.n_items,
               removed_users=ds.n_removed_users)
out.update(seconds=time.perf_counter() - start, peak_rss_bytes=peak_rss_bytes())
print(json.dumps(out))
"""


def write_fixture(folder: Path, n_ratings: int, seed: int) -> np.ndarray:
    """Write ``training_set/mv_*.txt`` files holding about ``n_ratings`` ratings; returns the ratings per file."""
    rng = np.random.default_rng(seed)
    n_files = max(1, round(PRIZE_FILES * n_ratings / PRIZE_RATINGS))
    sizes = rng.lognormal(0.0, 1.3, n_files)
    sizes = np.maximum(1, np.rint(sizes / sizes.sum() * n_ratings)).astype(np.int64)
    sizes = np.minimum(sizes, PRIZE_CUSTOMERS)
    customer_ids = np.sort(rng.choice(np.arange(1, MAX_CUSTOMER_ID + 1), PRIZE_CUSTOMERS, replace=False))
    day_text = np.datetime_as_string(np.arange(np.datetime64("1999-11-11"), np.datetime64("2006-01-01")))
    rest = [f",{rating},{day}\n" for rating in range(1, 6) for day in day_text]  # ",R,YYYY-MM-DD\n"
    folder.mkdir(parents=True, exist_ok=True)
    for movie, size in enumerate(sizes.tolist(), start=1):
        customers = customer_ids[rng.choice(PRIZE_CUSTOMERS, size, replace=False)].tolist()
        tails = rng.integers(0, len(rest), size).tolist()
        body = "".join([f"{c}{rest[t]}" for c, t in zip(customers, tails)])
        (folder / f"mv_{movie:07d}.txt").write_text(f"{movie}:\n{body}")
    return sizes


def run_child(task: str, folder: Path, sizes: np.ndarray, max_movies: int | None) -> dict:
    """Run ``task`` on the first ``max_movies`` files in a new process; ``ratings`` is the ratings it parsed."""
    code = CHILD.format(here=str(HERE), task=task, folder=str(folder), max_movies=max_movies)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{task} run failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["ratings"] = int(sizes[:max_movies].sum())
    return out


def extrapolate(small: dict, large: dict, key: str, ratings: int) -> float:
    """``a + b · ratings`` through the two measured points."""
    slope = (large[key] - small[key]) / (large["ratings"] - small["ratings"])
    return large[key] + slope * (ratings - large["ratings"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratings", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="write the fixture here and keep it")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    from infae_kit.io_utils import atomic_write_json

    scratch = None if args.keep else tempfile.mkdtemp(prefix="infae-netflix-fixture-")
    folder = (args.keep or Path(scratch)) / "training_set"
    try:
        t0 = time.perf_counter()
        sizes = write_fixture(folder, args.ratings, args.seed)
        n_files, n_ratings = sizes.shape[0], int(sizes.sum())
        size_bytes = sum(p.stat().st_size for p in folder.glob("mv_*.txt"))
        print(f"fixture: {n_files:,} files, {n_ratings:,} ratings, {size_bytes / 1e6:.0f} MB, written in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        baseline = run_child("imports", folder, sizes, None)
        runs = {}
        for task in ("csr", "dataset"):
            runs[task] = {"half": run_child(task, folder, sizes, max(n_files // 2, 1)),
                          "all": run_child(task, folder, sizes, None)}
        results = {"fixture": {"files": n_files, "ratings": n_ratings, "bytes": size_bytes, "seed": args.seed},
                   "imports_peak_rss_bytes": baseline["peak_rss_bytes"], "runs": runs, "extrapolated": {},
                   "machine": machine_info(), "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        print(f"interpreter + numpy + scipy + kit: peak RSS {baseline['peak_rss_bytes'] / 1e9:.2f} GB")
        print(f"{'run (ratings parsed)':<44}{'ratings':>13}{'seconds':>10}{'ratings/s':>13}{'peak RSS GB':>13}")
        for task, label in (("csr", "read_netflix_csr"), ("dataset", "load_dataset('netflix')")):
            for size in ("half", "all"):
                r = runs[task][size]
                print(f"{label + ' (' + size + ')':<44}{r['ratings']:>13,}{r['seconds']:>10.1f}"
                      f"{r['ratings'] / r['seconds']:>13,.0f}{r['peak_rss_bytes'] / 1e9:>13.2f}")
            half, whole = runs[task]["half"], runs[task]["all"]
            seconds = extrapolate(half, whole, "seconds", PRIZE_RATINGS)
            rss = extrapolate(half, whole, "peak_rss_bytes", PRIZE_RATINGS)
            results["extrapolated"][task] = {"ratings": PRIZE_RATINGS, "seconds": seconds, "peak_rss_bytes": rss,
                                             "ratings_per_s": PRIZE_RATINGS / seconds}
            print(f"{label + ' extrapolated (linear fit)':<44}{PRIZE_RATINGS:>13,}{seconds:>10.0f}"
                  f"{PRIZE_RATINGS / seconds:>13,.0f}{rss / 1e9:>13.2f}")
        atomic_write_json(args.out / "netflix_reader.json", results)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
