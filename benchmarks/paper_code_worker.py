"""One DISTILL-CF step of the paper's released code (``noveens/distill_cf``), driven over stdin for a side-by-side
timing with the kit's step (``benchmarks/bench_distill.py --paper-code CHECKOUT``).

    python benchmarks/paper_code_worker.py --checkout PATH --dataset magazine --gamma 200 --budget 500

The checkout is imported as is (``model.make_loss_fn`` and ``distill.get_update_functions``); nothing of it is
copied here. Three shims let it run on the kit's JAX (0.5.3) and NumPy (2.x) without touching its files:
``jax.scipy.linalg.solve`` accepts the ``sym_pos=True`` the code passes (removed from JAX; mapped to
``assume_a="pos"``, what it meant), ``numpy.in1d`` (removed in NumPy 2.4) is ``numpy.isin``, and neural-tangents
is imported without tensorflow (:func:`infae_kit.models.reference.import_neural_tangents`).
The code's data loader reads ``data/<dataset>/{total_data.hdf5,index.npz}`` relative to the working directory,
so the worker runs in a scratch directory whose ``data/<dataset>`` links to the kit's data folder.

Protocol (one JSON line per reply): ``step`` runs one outer step of the code's loop — ``update_fn`` then
``get_params``, blocked until ready (the batch, all users as the code's default ``batch_size = -1``, is built
once, as the kit's loop does) — and replies ``{"s": seconds, "cpu_s": CPU seconds of the process}``; ``quit`` replies ``{"peak_rss_bytes": ...}``.
The first line sent back after start-up is ``{"ready": true, "load_s": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import peak_rss_bytes  # noqa: E402


def _shim_jax_solve() -> None:
    """Let ``jax.scipy.linalg.solve(a, b, sym_pos=True)`` (the paper code's call) run on current JAX."""
    import jax.scipy.linalg as jsl

    solve = jsl.solve
    if getattr(solve, "_accepts_sym_pos", False):
        return

    def solve_with_sym_pos(a, b, *args, sym_pos: bool = False, **kwargs):
        if sym_pos:
            kwargs["assume_a"] = "pos"
        return solve(a, b, *args, **kwargs)

    solve_with_sym_pos._accepts_sym_pos = True
    jsl.solve = solve_with_sym_pos


def _scratch_with_data(dataset: str, data_dir: Path) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="paper_distill_cf-"))
    (scratch / "data").mkdir()
    os.symlink(data_dir / dataset, scratch / "data" / dataset)
    return scratch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, required=True, help="a checkout of noveens/distill_cf")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--gamma", type=int, default=200)
    ap.add_argument("--tau", type=float, default=10.0)
    ap.add_argument("--lam", type=float, default=1.0, help="inner λ passed as the code's `reg`")
    args = ap.parse_args(argv)

    from infae_kit.paths import data_dir

    checkout = args.checkout.resolve()
    for name in ("model.py", "distill.py", "data.py", "hyper_params.py"):
        if not (checkout / name).exists():
            raise SystemExit(f"{checkout} is not a checkout of noveens/distill_cf ({name} missing)")
    t0 = time.perf_counter()
    root = data_dir()
    os.chdir(_scratch_with_data(args.dataset, Path(root)))
    sys.path.insert(0, str(checkout))

    import jax
    import numpy as np

    from infae_kit.models.reference import import_neural_tangents

    import_neural_tangents()
    _shim_jax_solve()
    if not hasattr(np, "in1d"):
        np.in1d = np.isin
    import data as paper_data  # noqa: E402  (the checkout's modules)
    import distill as paper_distill  # noqa: E402
    from hyper_params import hyper_params as paper_defaults  # noqa: E402

    hp = dict(paper_defaults, dataset=args.dataset, user_support=args.budget, num_per_user=args.gamma,
              gumbel_tau=args.tau, batch_size=-1, accumulate_steps=1)
    np.random.seed(hp["seed"])
    data = paper_data.Dataset(hp)
    hp.update(num_users=data.num_users, num_items=data.num_items, num_interactions=data.num_interactions)
    params = paper_distill.initialize(hp, data)
    opt_state, get_params, update_fn, _, _, grad_zeros = paper_distill.get_update_functions(hp, params)
    params = get_params(opt_state)
    target = data.sample_training_batch()
    key = jax.random.PRNGKey(hp["seed"])
    acc = grad_zeros(params)
    print(json.dumps({"ready": True, "load_s": time.perf_counter() - t0, "n_users": int(data.num_users),
                      "n_items": int(data.num_items)}), flush=True)
    step = 0
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            print(json.dumps({"peak_rss_bytes": peak_rss_bytes()}), flush=True)
            return 0
        if cmd != "step":
            raise SystemExit(f"unknown command {cmd!r}")
        step += 1
        t, c = time.perf_counter(), time.process_time()
        opt_state, acc, key = update_fn(step, opt_state, params, acc, target, key, reg=args.lam)
        params = get_params(opt_state)
        jax.block_until_ready((params, acc, key))
        print(json.dumps({"s": time.perf_counter() - t, "cpu_s": time.process_time() - c}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
