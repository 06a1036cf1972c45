"""Benchmark: what keying a cache by its inputs costs, the kit's way and joblib.Memory's way.

    python benchmarks/bench_cache_keys.py --dataset ml-1m [--repeats 5]

The kit's on-disk caches (sweep cells, SVP-CF forgetting counts, AR-CF users, continual-learning strategies,
DISTILL-CF runs) are keyed by a SHA-256 of the train matrix's CSR arrays plus a small JSON of the settings, and
store JSON (or ``.npz``). ``joblib.Memory`` keys a call by hashing every argument with ``joblib.hash`` (a pickle
of the argument fed to MD5) and stores a pickle of the result. Both are measured on the dataset's train
matrix, ``--repeats`` times each (the median is recorded):

* ``sha256_csr_s``: SHA-256 over the CSR's ``indptr``, ``indices`` and ``data`` (the kit's fingerprint);
* ``joblib_hash_csr_s``: ``joblib.hash(train)``;
* ``joblib_hash_dataset_s``: ``joblib.hash`` of the whole ``RecDataset`` (what ``Memory`` hashes when a cached
  function takes the dataset, as every sweep cell does);
* ``memory_hit_s``: a ``Memory``-cached call taking the dataset that returns a small dict, second call (a hit:
  hash the arguments, load the pickle);
* ``json_cell_read_s``: reading one sweep-cell-sized JSON file (the kit's hit, once the key is known).

Writes ``benchmarks/results/cache_keys-<dataset>.json`` atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info, peak_rss_bytes  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _sha256_csr(matrix) -> str:
    digest = hashlib.sha256()
    for array in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(array.tobytes())
    return digest.hexdigest()


def main(argv=None) -> int:
    import joblib

    from infae_kit.data import load_dataset
    from infae_kit.io_utils import atomic_write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    train = data.train
    record = {
        "dataset": args.dataset,
        "train_shape": list(train.shape),
        "train_nnz": int(train.nnz),
        "repeats": args.repeats,
        "sha256_csr_s": _median_seconds(lambda: _sha256_csr(train), args.repeats),
        "joblib_hash_csr_s": _median_seconds(lambda: joblib.hash(train), args.repeats),
        "joblib_hash_dataset_s": _median_seconds(lambda: joblib.hash(data), args.repeats),
    }
    with tempfile.TemporaryDirectory(prefix="bench-cache-keys-") as folder:
        memory = joblib.Memory(folder, verbose=0)

        @memory.cache
        def cell(dataset, n_users: int) -> dict:
            return {"n_users": n_users, "rows": int(dataset.train.shape[0])}

        t = time.perf_counter()
        cell(data, 50)
        record["memory_first_call_s"] = time.perf_counter() - t
        record["memory_hit_s"] = _median_seconds(lambda: cell(data, 50), args.repeats)
        cell_file = Path(folder) / "cell.json"
        cell_file.write_text(json.dumps({f"test_metric_{i}": 0.1 * i for i in range(30)}))
        record["json_cell_read_s"] = _median_seconds(lambda: json.loads(cell_file.read_text()), args.repeats)
    record["joblib_version"] = joblib.__version__
    record["peak_rss_bytes"] = peak_rss_bytes()
    record["machine"] = machine_info()
    out = atomic_write_json(RESULTS_DIR / f"cache_keys-{args.dataset}.json", record)
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
