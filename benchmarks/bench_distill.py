"""Benchmark: DISTILL-CF seconds per outer step and peak memory; side by side with the paper's released code.

    python benchmarks/bench_distill.py --dataset magazine [--gammas 50 200 800] [--noise hash threefry]
                                       [--budget 500] [--steps 5]
    python benchmarks/bench_distill.py --dataset magazine --paper-code /path/to/distill_cf [--steps 8]
    python benchmarks/bench_distill.py --dataset ml-1m --memory [--gammas 50 200 800] [--batch-size 1024]
    python benchmarks/bench_distill.py --dataset ml-1m --sampler-parts [--gammas 40]

Every timed configuration runs in its own worker process (so its peak resident memory is its own): load the
data, build the jitted step, run one step (compilation, not timed), then time steps with ``block_until_ready``
(validation is not part of a step). Results go to ``benchmarks/results/distill-<dataset>.json`` (written
atomically; each mode replaces only its own section: ``runs``, ``side_by_side``, ``memory``).

``--sampler-memory MB`` sets the memory a step may keep Gumbel draws in for its backward pass (the kit's
:func:`~infae_kit.distill.loop.sampler_memory_mb`; 0 re-draws every sample); each result records it and the
number of draws it keeps.

``--paper-code CHECKOUT`` times the kit's step and the paper's (``benchmarks/paper_code_worker.py``, see
``benchmarks/paper_code_distill.sh``) in two worker processes stepped alternately — ours, theirs, ours,
theirs — so that the load of a shared machine falls on both alike; both run full batch (all users), μ, γ and
τ the same, and the median of the timed steps is compared. The load average before and after is recorded.

``--memory`` measures peak RSS as γ varies (full batch on ``--dataset``) and as the number of users U varies at
a fixed batch of ``--batch-size`` streamed users (``--dataset`` against the datasets of ``--user-datasets`` and
synthetic matrices of ``--users`` rows with the dataset's items and density), a few steps each, once per
``--sampler-memory`` value.

``--sampler-parts`` splits the cost of one Gumbel draw of the sampler's forward pass (μ × items of the dataset,
the first of ``--gammas`` draws, τ = ``--tau``, the ``hash`` noise) by building it up: the scan's memory passes
alone (the draw's numerators, their row sums and the accumulation, with noise-free numerators), then the
counter hash, then the log, then the full draw (:func:`~infae_kit.distill.sampler.gumbel_sum_forward`, the
Fréchet power), and the backward pass (:func:`~infae_kit.distill.sampler.gumbel_sum_backward`); median
milliseconds per draw over ``--steps`` timed calls after a compiling one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import current_rss_bytes, machine_info, peak_rss_bytes  # noqa: E402

PAPER_WORKER = HERE / "paper_code_worker.py"


def _load(spec: dict):
    """The dataset of ``spec``: a registered name, or ``synthetic-like:<name>:<users>`` (same items, density)."""
    import numpy as np
    import scipy.sparse as sp

    from infae_kit.data import load_dataset

    name = spec["dataset"]
    if not name.startswith("synthetic-like:"):
        return load_dataset(name)
    _, base, n_users = name.split(":")
    ref = load_dataset(base)
    n_users, n_items = int(n_users), ref.n_items
    rng = np.random.default_rng(0)
    per_user = max(int(round(ref.train.nnz / ref.n_users)), 1)
    pop = np.asarray(ref.train.sum(axis=0)).ravel() + 1.0
    rows = np.repeat(np.arange(n_users), per_user)
    cols = rng.choice(n_items, size=rows.size, p=pop / pop.sum())
    train = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
    train.data[:] = 1.0
    return train


def _make_stepper(spec: dict):
    """``(step() -> seconds, info)`` for the kit's DISTILL-CF step on the spec's data."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.sparse as sp

    from infae_kit.distill import DistillConfig, initial_prior
    from infae_kit.distill.loop import (
        kept_draws,
        make_step,
        real_user_batch,
        sampler_memory_mb,
    )

    data = _load(spec)
    train = sp.csr_matrix(data if sp.issparse(data) else data.train, dtype=np.float32)
    rss_data = current_rss_bytes()
    config = DistillConfig(budget=spec["budget"], gamma=spec["gamma"], tau=spec.get("tau", 10.0),
                           noise=spec["noise"], batch_size=spec.get("batch_size", -1),
                           accumulate=spec.get("accumulate", 1))
    optimizer, step = make_step(config, train.nnz / train.shape[0], sampler_memory=spec.get("sampler_memory"))
    prior = jnp.asarray(initial_prior(train, config.budget, config.seed)[0])
    state = {"prior": prior, "opt": optimizer.init(prior), "key": jax.random.PRNGKey(0), "i": 0,
             "loss": float("nan")}
    lam = jnp.float32(spec.get("lam", 1.0))
    full = jnp.asarray(train.toarray()) if config.batch_size == -1 else None

    def one() -> float:
        state["i"] += 1
        t, c = time.perf_counter(), time.process_time()
        batches = [full] if full is not None else [
            real_user_batch(train, config, state["i"], part) for part in range(config.accumulate)]
        state["prior"], state["opt"], state["key"], loss = step(state["prior"], state["opt"], state["key"],
                                                                batches, lam)
        state["loss"] = float(loss)
        state["cpu_s"] = time.process_time() - c
        return time.perf_counter() - t

    memory_mb = sampler_memory_mb(spec.get("sampler_memory"))
    kept = kept_draws(config.gamma, (config.budget, train.shape[1]), memory_mb)
    return one, state, {"rss_after_data_bytes": rss_data, "n_users": int(train.shape[0]),
                        "n_items": int(train.shape[1]), "sampler_memory_mb": memory_mb, "kept_draws": kept}


def run_worker(spec: dict) -> dict:
    """One configuration, in this process: returns timings and memory."""
    one, state, info = _make_stepper(spec)
    first = one()
    times = [one() for _ in range(spec["steps"])]
    return dict(info, first_step_s=first, s_per_step=statistics.median(times), step_times_s=times,
                peak_rss_bytes=peak_rss_bytes(), final_loss=state["loss"])


def interactive_worker(spec: dict) -> int:
    """The kit's step driven over stdin with the protocol of ``paper_code_worker.py``."""
    t0 = time.perf_counter()
    one, state, info = _make_stepper(spec)
    print(json.dumps(dict(info, ready=True, load_s=time.perf_counter() - t0)), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            print(json.dumps({"peak_rss_bytes": peak_rss_bytes()}), flush=True)
            return 0
        if cmd != "step":
            raise SystemExit(f"unknown command {cmd!r}")
        seconds = one()
        print(json.dumps({"s": seconds, "cpu_s": state["cpu_s"]}), flush=True)
    return 0


class _Worker:
    """A worker process answering ``step`` / ``quit`` with one JSON line each (other output lines skipped)."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ready = self._reply()

    def _reply(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"the {self.name} worker exited (code {self.proc.wait()}); see its stderr above")
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> dict:
        out = self.ask("quit")
        self.proc.wait(timeout=60)
        return out


def side_by_side(args) -> dict:
    """The kit's and the paper's steps, interleaved, full batch: medians and their ratio."""
    checkout = Path(args.paper_code).resolve()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    load_before = machine_info()["load_avg_1_5_15"]
    spec = {"dataset": args.dataset, "budget": args.budget, "gamma": args.gammas[0], "tau": args.tau,
            "noise": args.noise[0], "steps": args.steps, "sampler_memory": args.sampler_memory[0]}
    ours = _Worker("kit", [sys.executable, __file__, "--serve", json.dumps(spec)], env)
    theirs = _Worker("paper-code", [sys.executable, str(PAPER_WORKER), "--checkout", str(checkout), "--dataset",
                                    args.dataset, "--budget", str(args.budget), "--gamma", str(args.gammas[0]),
                                    "--tau", str(args.tau)], env)
    first = {"kit": ours.ask("step")["s"], "paper_code": theirs.ask("step")["s"]}  # compilation
    times: dict[str, list[float]] = {"kit": [], "paper_code": []}
    cpu: dict[str, list[float]] = {"kit": [], "paper_code": []}
    for i in range(args.steps):
        for name, worker in (("kit", ours), ("paper_code", theirs)):
            reply = worker.ask("step")
            times[name].append(reply["s"])
            cpu[name].append(reply["cpu_s"])
        print(f"step {i + 1}: kit {times['kit'][-1]:.3f} s ({cpu['kit'][-1]:.2f} CPU s), paper code "
              f"{times['paper_code'][-1]:.3f} s ({cpu['paper_code'][-1]:.2f} CPU s) (load {os.getloadavg()[0]:.2f})",
              flush=True)
    rss = {"kit": ours.close()["peak_rss_bytes"], "paper_code": theirs.close()["peak_rss_bytes"]}
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"median_cpu_s_per_step": med_cpu, "cpu_speedup": med_cpu["paper_code"] / med_cpu["kit"],
            "step_cpu_s": cpu, "budget": args.budget, "gamma": args.gammas[0], "tau": args.tau, "noise": args.noise[0],
            "batch": "all users", "timed_steps": args.steps, "first_step_s": first, "step_times_s": times,
            "median_s_per_step": med, "speedup": med["paper_code"] / med["kit"], "peak_rss_bytes": rss,
            "load_avg_before": load_before, "load_avg_after": machine_info()["load_avg_1_5_15"],
            "paper_code_checkout": checkout.name, "sampler_memory_mb": ours.ready["sampler_memory_mb"],
            "kept_draws": ours.ready["kept_draws"]}


def _run_isolated(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"worker failed for {spec}")
    return dict(spec, **json.loads(proc.stdout.strip().splitlines()[-1]))


def memory_runs(args) -> dict:
    """Peak RSS as γ varies (full batch) and as U varies at a fixed streamed batch, for each sampler memory."""
    by_gamma, by_users = [], []
    for memory in args.sampler_memory:
        for gamma in args.gammas:
            res = _run_isolated({"dataset": args.dataset, "budget": args.budget, "gamma": gamma, "noise": args.noise[0],
                                 "steps": args.steps, "batch_size": args.batch_size, "sampler_memory": memory})
            by_gamma.append(res)
            print(f"sampler memory {res['sampler_memory_mb']:g} MiB ({res['kept_draws']} draws kept), γ={gamma}: "
                  f"peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB, {res['s_per_step']:.2f} s/step", flush=True)
        names = [args.dataset, *args.user_datasets] + [f"synthetic-like:{args.dataset}:{u}" for u in args.users]
        for name in names:
            res = _run_isolated({"dataset": name, "budget": args.budget, "gamma": args.gammas[0],
                                 "noise": args.noise[0], "steps": args.steps, "batch_size": args.batch_size,
                                 "sampler_memory": memory})
            by_users.append(res)
            print(f"sampler memory {res['sampler_memory_mb']:g} MiB, {name}, U={res['n_users']}: peak RSS "
                  f"{res['peak_rss_bytes'] / 2**30:.2f} GiB (data {res['rss_after_data_bytes'] / 2**30:.2f} GiB), "
                  f"{res['s_per_step']:.2f} s/step", flush=True)
    return {"batch_size": args.batch_size, "by_gamma": by_gamma, "by_users": by_users}


def sampler_parts(args) -> dict:
    """Milliseconds per draw of the sampler's forward pass built up part by part, and of its backward pass."""
    import jax
    import jax.numpy as jnp

    from infae_kit.data import load_dataset
    from infae_kit.distill.sampler import (
        gumbel_sum_backward,
        gumbel_sum_forward,
        hash_uniform,
        sample_seeds,
    )

    n_items = load_dataset(args.dataset).train.shape[1]
    gamma, tau = args.gammas[0], float(args.tau)
    logits = jax.random.normal(jax.random.PRNGKey(1), (args.budget, n_items), jnp.float32)
    seeds = sample_seeds(jax.random.PRNGKey(0), gamma, "hash")
    cot = jax.random.normal(jax.random.PRNGKey(2), logits.shape, jnp.float32)

    def partial_forward(part):
        def value(seed, shape):
            if part == "memory passes":  # a per-draw scalar: no noise, the same arrays read and written
                return jnp.full(shape, 1.0, jnp.float32) + seed[0].astype(jnp.float32) * 1e-9
            u = hash_uniform(seed, shape)
            return u if part == "+ counter hash" else -jnp.log(u)

        def forward(x, s):
            a = jnp.exp((x - jnp.max(x, axis=-1, keepdims=True)) / tau)

            def body(acc, seed):
                e = a * value(seed, x.shape)
                z = jnp.sum(e, axis=-1)
                return acc + e * (1.0 / z)[:, None], z

            return jax.lax.scan(body, jnp.zeros_like(x), s)
        return jax.jit(forward)

    programs = {part: partial_forward(part) for part in ("memory passes", "+ counter hash", "+ log")}
    programs["full forward draw"] = jax.jit(lambda x, s: gumbel_sum_forward(x, s, tau, "hash"))
    total, norms = programs["full forward draw"](logits, seeds)
    backward = jax.jit(lambda x, s, t, n, g: gumbel_sum_backward(x, s, t, n, g, tau, "hash"))
    calls = {part: (lambda f=f: f(logits, seeds)[0]) for part, f in programs.items()}
    calls["backward draw"] = lambda: backward(logits, seeds, total, norms, cot)
    times: dict[str, list[float]] = {part: [] for part in calls}
    for call in calls.values():
        jax.block_until_ready(call())  # compile
    for _ in range(args.steps):
        for part, call in calls.items():  # interleaved, so that a change of load falls on every part alike
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[part].append((time.perf_counter() - start) * 1000.0 / gamma)
    return {"shape": [args.budget, n_items], "gamma": gamma, "tau": tau, "timed_calls": args.steps,
            "ms_per_draw": {part: statistics.median(v) for part, v in times.items()}, "ms_per_draw_all": times}


def _jax_devices() -> list[str]:
    import jax

    return [str(d) for d in jax.devices()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="magazine")
    ap.add_argument("--gammas", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--noise", nargs="+", default=["hash", "threefry"], choices=["hash", "threefry"])
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--tau", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--paper-code", help="checkout of noveens/distill_cf: time it side by side with the kit")
    ap.add_argument("--memory", action="store_true", help="peak RSS against γ and against the number of users")
    ap.add_argument("--sampler-parts", action="store_true", help="the cost of one draw of the sampler, part by part")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="streamed users per step (default: all users; --memory's U runs: 1024)")
    ap.add_argument("--users", type=int, nargs="*", default=[50_000], help="synthetic user counts for --memory")
    ap.add_argument("--user-datasets", nargs="*", default=[],
                    help="registered datasets whose users are further U runs of --memory (e.g. netflix-shape)")
    ap.add_argument("--sampler-memory", type=float, nargs="+", default=[None],
                    help="MiB a step may keep Gumbel draws in (default: the kit's, $INFAE_SAMPLER_MEMORY_MB or "
                         "1024); --memory runs each value given, the other modes the first")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--suffix", default="", help="appended to the result file's name (e.g. -gpu)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.full_or_batch = -1 if args.batch_size is None else args.batch_size
    if args.batch_size is None:
        args.batch_size = 1024
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0
    if args.serve:
        return interactive_worker(json.loads(args.serve))

    from infae_kit.io_utils import atomic_write_json

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in args.dataset)
    path = args.out / f"distill-{safe}{args.suffix}.json"
    out = json.loads(path.read_text()) if path.exists() else {"dataset": args.dataset}
    machine = machine_info()
    if args.paper_code:
        res = side_by_side(args)
        out["side_by_side"] = dict(res, machine=machine)
        print(f"{args.dataset}: kit {res['median_s_per_step']['kit']:.3f} s/step, paper code "
              f"{res['median_s_per_step']['paper_code']:.3f} s/step: {res['speedup']:.2f}x "
              f"(load {res['load_avg_before']} -> {res['load_avg_after']})")
    elif args.memory:
        out["memory"] = dict(memory_runs(args), machine=machine)
    elif args.sampler_parts:
        res = sampler_parts(args)
        out["sampler_parts"] = dict(res, machine=dict(machine, load_avg_after=machine_info()["load_avg_1_5_15"]))
        for part, ms in res["ms_per_draw"].items():
            print(f"{args.dataset} {res['shape']} γ={res['gamma']}: {part:18s} {ms:6.2f} ms per draw")
    else:
        runs = []
        for noise in args.noise:
            for gamma in args.gammas:
                res = _run_isolated({"dataset": args.dataset, "budget": args.budget, "gamma": gamma, "noise": noise,
                                     "tau": args.tau, "steps": args.steps, "batch_size": args.full_or_batch,
                                     "sampler_memory": args.sampler_memory[0]})
                runs.append(res)
                print(f"{args.dataset} μ={args.budget} γ={gamma:4d} noise={noise:8s}: {res['s_per_step']:.3f} s/step "
                      f"(compile+first {res['first_step_s']:.1f} s), peak RSS {res['peak_rss_bytes'] / 2**30:.2f} "
                      f"GiB (data loaded: {res['rss_after_data_bytes'] / 2**30:.2f} GiB)", flush=True)
        machine["load_avg_after"] = machine_info()["load_avg_1_5_15"]
        machine["jax_devices"] = _jax_devices()
        out.update(budget=args.budget, runs=runs, machine=machine)
        out.pop("paper_code", None)
    atomic_write_json(path, out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
