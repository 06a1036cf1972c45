"""Benchmark: DISTILL-CF seconds per outer step and peak memory, as γ and the noise generator vary.

    python benchmarks/bench_distill.py --dataset magazine [--gammas 50 200 800] [--noise hash threefry]
                                       [--budget 500] [--steps 5]

Each (γ, noise) configuration runs in a fresh process (so its peak resident memory is its own): load the data,
build the jitted step, run one step (compilation), then ``--steps`` timed steps on all users (batch = −1, the
paper's default). Writes ``benchmarks/results/distill-<dataset>.json`` atomically. The reference is the paper's
code on the same 2-core machine (``docs/evaluation.md``, "The paper's code, rerun"): 2.37 s/step on Magazine and 6.3–6.7 s/step
on ML-1M (μ = 500, γ = 200), peak RSS 1.3 GB / 2.0 GB. A loaded machine slows everything down: the load average
at start is recorded next to the timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import current_rss_bytes, machine_info, peak_rss_bytes  # noqa: E402

PAPER_CODE = {"magazine": {"s_per_step": 2.37, "peak_rss_gb": 1.3},
              "ml-1m": {"s_per_step": 6.5, "s_per_step_range": [6.3, 6.7], "peak_rss_gb": 2.0}}


def run_worker(spec: dict) -> dict:
    """One configuration, in this process: returns timings and memory."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from infae_kit.data import load_dataset
    from infae_kit.distill import DistillConfig, initial_prior
    from infae_kit.distill.loop import make_step

    data = load_dataset(spec["dataset"])
    train = data.train.astype(np.float32)
    x_all = jnp.asarray(train.toarray())
    rss_data = current_rss_bytes()
    config = DistillConfig(budget=spec["budget"], gamma=spec["gamma"], noise=spec["noise"])
    optimizer, step = make_step(config, train.nnz / train.shape[0])
    prior = jnp.asarray(initial_prior(train, config.budget, config.seed)[0])
    opt_state, key, lam = optimizer.init(prior), jax.random.PRNGKey(0), jnp.float32(5.0)
    times = []
    for i in range(spec["steps"] + 1):
        t = time.perf_counter()
        prior, opt_state, key, loss = step(prior, opt_state, key, x_all, lam)
        loss = float(loss)
        times.append(time.perf_counter() - t)
    return {"first_step_s": times[0], "s_per_step": statistics.median(times[1:]), "step_times_s": times[1:],
            "rss_after_data_bytes": rss_data, "peak_rss_bytes": peak_rss_bytes(), "final_loss": loss}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="magazine")
    ap.add_argument("--gammas", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--noise", nargs="+", default=["hash", "threefry"], choices=["hash", "threefry"])
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0

    from infae_kit.io_utils import atomic_write_json

    machine = machine_info()
    runs = []
    for noise in args.noise:
        for gamma in args.gammas:
            spec = {"dataset": args.dataset, "budget": args.budget, "gamma": gamma, "noise": noise,
                    "steps": args.steps}
            proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"worker failed for {spec}")
            res = dict(spec, **json.loads(proc.stdout.strip().splitlines()[-1]))
            runs.append(res)
            print(f"{args.dataset} μ={args.budget} γ={gamma:4d} noise={noise:8s}: {res['s_per_step']:.3f} s/step "
                  f"(compile+first {res['first_step_s']:.1f} s), peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB "
                  f"(data loaded: {res['rss_after_data_bytes'] / 2**30:.2f} GiB)", flush=True)
    machine["load_avg_after"] = machine_info()["load_avg_1_5_15"]
    out = {"dataset": args.dataset, "budget": args.budget, "runs": runs, "machine": machine,
           "paper_code": PAPER_CODE.get(args.dataset)}
    path = args.out / f"distill-{args.dataset}.json"
    atomic_write_json(path, out)
    print(f"machine: {machine}\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
