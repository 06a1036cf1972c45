"""``python -m infae_kit.scale fit``: landmark ∞-AE on one machine, several devices, or a cluster of processes.

One process per host::

    python -m infae_kit.scale fit --dataset ml-1m --landmarks 1000 --output results.json \\
        [--selection uniform|kmeans++|leverage] [--landmarks-file users.txt] [--support SUMMARY_DIR] \\
        [--block-users 8192] [--coordinator HOST:PORT --num-processes N --process-id I] [--local-processes P] \\
        [--timeout 600]

* ``--support`` takes a saved DISTILL-CF summary (the folder holding ``support.npz``, e.g. an entry of the
  distill cache): its μ synthetic users are the landmarks, every real user still a regression target.
* ``--coordinator/--num-processes/--process-id`` join a ``jax.distributed`` run (CPU collectives through gloo);
  every process must be given the same arguments but its own ``--process-id``.
* ``--local-processes P`` starts P such processes on this machine (127.0.0.1) and supervises them: for testing
  the multi-process path without a cluster.
* Each process reads only its share of users from a memory-mapped cache of the dataset
  (:mod:`infae_kit.scale.rows_cache`, built once by process 0 under ``--cache-dir``).
* Only process 0 writes, atomically, at the very end: ``--output`` (the notebooks' results contract,
  :func:`infae_kit.evaluation.results.write_results`: ``metrics[model][split][metric]``, ``timings_s``) and,
  with ``--save-model``, the fitted model (``.npz``). A failed run writes nothing.
* A process that makes no progress for ``--timeout`` seconds (a peer died, the coordinator is gone) stops with
  an error saying so; the ``--local-processes`` supervisor stops the others as soon as one fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from infae_kit.errors import InfaeError, ParameterError

__all__ = ["main", "build_parser", "parse_dataset_options", "Watchdog", "EXIT_PEER_LOST", "EXIT_BAD_INPUT", "FAULT_ENV"]

log = logging.getLogger("infae_kit.scale")

EXIT_BAD_INPUT = 2
"""Exit status for bad input (the message says what and how to fix it)."""
EXIT_PEER_LOST = 3
"""Exit status of a process that stopped because another process stopped making progress."""
FAULT_ENV = "INFAE_SCALE_KILL_AT_STEP"
"""Fault injection for tests: ``"<process_id>:<step>"`` makes that process kill itself (SIGKILL) at that step."""
MODEL_KEY = "infae_landmark"
RESULTS_STEM = "scale_fit"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m infae_kit.scale`` (its one subcommand, ``fit``, and its options)."""
    parser = argparse.ArgumentParser(prog="python -m infae_kit.scale", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit landmark ∞-AE (λ on validation), evaluate on test, write results JSON")
    fit.add_argument("--dataset", required=True, help="a name from infae_kit.data.list_datasets()")
    fit.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                     help="option of load_dataset (repeatable), e.g. n_users=5000 for 'synthetic'")
    fit.add_argument("--seed", type=int, default=42, help="split seed of raw datasets and landmark seed")
    fit.add_argument("--landmarks", type=int, default=1000, help="number m of landmark users")
    fit.add_argument("--landmarks-file", type=Path, default=None,
                     help="text file of landmark user ids (one per line), instead of --landmarks/--selection")
    fit.add_argument("--support", type=Path, default=None,
                     help="a saved DISTILL-CF summary (the folder with support.npz): its rows are the landmarks")
    fit.add_argument("--selection", default=None, choices=["uniform", "kmeans++", "leverage"],
                     help="landmark rule (default: the kit's recommended one)")
    fit.add_argument("--block-users", type=int, default=8192, help="users per block and device")
    fit.add_argument("--lambdas", default="0,1,5,20,50,100", help="λ grid, comma separated (scaled like ∞-AE)")
    fit.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    fit.add_argument("--eval-users", type=int, default=0,
                     help="evaluate on a seeded sample of this many users (0: all users)")
    fit.add_argument("--select-users", type=int, default=0,
                     help="pick λ on a seeded sample of this many of the evaluated users (0: all of them)")
    fit.add_argument("--output", type=Path, required=True, help="results JSON (written by process 0 only)")
    fit.add_argument("--save-model", type=Path, default=None, help="also write the fitted model (.npz)")
    fit.add_argument("--cache-dir", type=Path, default=None, help="user-rows cache (default: <runs>/scale_cache)")
    fit.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="jax.distributed coordinator")
    fit.add_argument("--num-processes", type=int, default=1)
    fit.add_argument("--process-id", type=int, default=0)
    fit.add_argument("--local-processes", type=int, default=0,
                     help="start this many processes on 127.0.0.1 and supervise them (testing)")
    fit.add_argument("--timeout", type=float, default=600.0,
                     help="seconds without progress after which a process gives up on its peers")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


# ----------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------
def _check_args(args) -> None:
    if args.landmarks < 1:
        raise ParameterError(f"--landmarks must be at least 1, got {args.landmarks}.")
    if args.block_users < 1:
        raise ParameterError(f"--block-users must be at least 1, got {args.block_users}.")
    if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
        raise ParameterError(f"--process-id {args.process_id} must be in [0, --num-processes={args.num_processes}).")
    if args.num_processes > 1 and not args.coordinator:
        raise ParameterError("--num-processes > 1 needs --coordinator HOST:PORT (the address of process 0).")
    if args.local_processes and (args.coordinator or args.num_processes > 1):
        raise ParameterError("--local-processes starts its own processes: do not combine it with --coordinator.")
    if args.local_processes < 0 or args.timeout <= 0 or args.eval_users < 0 or args.select_users < 0:
        raise ParameterError("--local-processes, --eval-users and --select-users must be ≥ 0 and --timeout > 0.")
    if args.landmarks_file is not None and not args.landmarks_file.is_file():
        raise ParameterError(f"--landmarks-file {args.landmarks_file} does not exist.")
    if args.support is not None and args.landmarks_file is not None:
        raise ParameterError("give either --support (a DISTILL-CF summary as the landmarks) or --landmarks-file, "
                             "not both.")
    if args.support is not None and not (args.support / "support.npz").is_file():
        raise ParameterError(f"--support {args.support} has no support.npz: give the folder a DISTILL-CF run saved "
                             "(DistillResult.save, or an entry of the distill cache).")
    if args.output.suffix != ".json":
        raise ParameterError(f"--output must be a .json file, got {args.output}.")


def parse_dataset_options(pairs: Sequence[str]) -> dict:
    """``["n_users=5000", ...]`` → ``{"n_users": 5000, ...}`` (values parsed as JSON where they parse)."""
    from infae_kit.runner import parse_value

    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--dataset-option takes KEY=VALUE, got {pair!r}.")
        key, value = pair.split("=", 1)
        options[key.strip()] = parse_value(value.strip())
    return options


# ----------------------------------------------------------------------------------------------------------
# liveness
# ----------------------------------------------------------------------------------------------------------
class Watchdog:
    """Stops this process (exit :data:`EXIT_PEER_LOST`) when :meth:`ping` has not been called for ``timeout`` s.

    A collective waiting for a process that died never returns; the watchdog turns that into a clear error.
    """

    def __init__(self, timeout: float, process_id: int):
        self.timeout = float(timeout)
        self.process_id = process_id
        self.last = time.monotonic()
        self.stage = "fit"
        self.steps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="infae-scale-watchdog", daemon=True)

    def start(self) -> "Watchdog":
        """Start watching (a daemon thread); returns ``self``."""
        self._thread.start()
        return self

    def ping(self, stage: str | None = None) -> None:
        """Record progress (one step, of ``stage`` if given); fires the :data:`FAULT_ENV` fault when it names this
        process and step."""
        self.last = time.monotonic()
        self.steps += 1
        if stage:
            self.stage = stage
        fault = os.environ.get(FAULT_ENV, "")
        if fault:
            pid, step = (int(x) for x in fault.split(":"))
            if pid == self.process_id and self.steps == step:
                os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        """Stop watching (the thread ends within a second)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.timeout / 10)):
            idle = time.monotonic() - self.last
            if idle > self.timeout:
                sys.stderr.write(
                    f"infae_kit.scale: process {self.process_id} made no progress for {idle:.0f} s (stage "
                    f"{self.stage!r}, step {self.steps}): another process stopped or the coordinator is unreachable. "
                    "Stopping without writing results.\n")
                sys.stderr.flush()
                os._exit(EXIT_PEER_LOST)


# ----------------------------------------------------------------------------------------------------------
# one process
# ----------------------------------------------------------------------------------------------------------
def _peak_rss_gb() -> float:
    from infae_kit.io_utils import peak_rss_bytes

    return peak_rss_bytes() / 1e9


def _write_outputs(args, report, data, timings: dict, extra: dict) -> None:
    from infae_kit.evaluation.results import write_results

    parameters = dict(dataset=args.dataset, dataset_options=parse_dataset_options(args.dataset_option), seed=args.seed,
                      landmarks=report.n_landmarks, selection=report.selection, block_users=args.block_users,
                      lambdas=args.lambdas, dtype=args.dtype, eval_users=args.eval_users,
                      select_users=args.select_users, num_processes=extra["num_processes"])
    metrics = {MODEL_KEY: {"val": report.val_metrics[report.best_value], "test": report.test_metrics}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".scale-", dir=args.output.parent))
    try:
        if args.save_model is not None:
            report.model.save(args.save_model)
        written = write_results(staging, RESULTS_STEM, args.dataset, parameters, metrics, timings, extra)
        os.replace(written, args.output)
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()


def _run_process(args) -> int:
    t_start = time.perf_counter()
    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                                   initialization_timeout=int(max(args.timeout, 30)))
    import numpy as np

    from infae_kit.data import load_dataset
    from infae_kit.models.landmark import tune_and_evaluate_landmark
    from infae_kit.models.landmark_basis import read_landmark_file
    from infae_kit.scale.rows_cache import cache_folder, ensure_user_rows, open_user_rows
    from infae_kit.scale.sharding import ShardedEngine, wait_for_peers

    options = parse_dataset_options(args.dataset_option)
    folder = cache_folder(args.dataset, args.seed, options, args.cache_dir)
    t = time.perf_counter()
    if args.process_id == 0:
        ensure_user_rows(folder, lambda: load_dataset(args.dataset, seed=args.seed, **options))
    wait_for_peers("infae_scale_cache_ready")
    data = open_user_rows(folder)
    t_load = time.perf_counter() - t

    landmarks = args.landmarks
    if args.landmarks_file is not None:
        landmarks = read_landmark_file(args.landmarks_file, data.user_ids)
    elif args.support is None and args.landmarks > data.n_users:
        raise ParameterError(f"--landmarks {args.landmarks:,} exceeds the {data.n_users:,} users of {args.dataset}; "
                             f"use at most {data.n_users:,}.")
    support, selection = None, args.selection
    if args.landmarks_file is not None:
        selection = None
    elif args.support is not None:
        from infae_kit.distill.artifact import load_distilled

        support, selection = load_distilled(args.support).best_support, "distilled"
        if support.shape[1] != data.n_items:
            raise ParameterError(f"--support {args.support} has {support.shape[1]:,} items but {args.dataset} has "
                                 f"{data.n_items:,}: it was distilled from another dataset.")
    watchdog = Watchdog(args.timeout, args.process_id).start()
    engine = ShardedEngine(on_step=watchdog.ping)
    report = tune_and_evaluate_landmark(
        data, landmarks=landmarks, selection=selection, support=support,
        lambdas=[float(x) for x in args.lambdas.split(",")], block_users=args.block_users, dtype=args.dtype,
        seed=args.seed, eval_users=args.eval_users or None,
        select_users=args.select_users or None, weights=data.weights, engine=engine,
        progress=not args.quiet and args.process_id == 0)
    watchdog.ping("gather")
    from jax.experimental import multihost_utils

    peaks = np.array([_peak_rss_gb()])
    if jax.process_count() > 1:
        peaks = multihost_utils.process_allgather(peaks).ravel()
    timings = {"load": t_load, **{k: v for k, v in report.timings_s.items() if k != "total"},
               "total": time.perf_counter() - t_start}
    extra = {"best_lambda": report.best_value, "val_by_lambda": {f"{k:g}": v for k, v in report.val_metrics.items()},
             "effective_lambda": report.effective_lambdas[report.best_value], "solve_rank": report.ranks[report.best_value],
             "landmarks": report.n_landmarks, "selection": report.selection, "n_users_trained": report.n_users_trained,
             "n_users_evaluated": report.n_users_evaluated,
             "n_users_selection": report.n_users_selection, "n_items": data.n_items,
             "num_processes": jax.process_count(), "num_devices": engine.n_devices, "backend": jax.default_backend(),
             "peak_rss_gb": float(peaks.max()), "peak_rss_gb_per_process": peaks.tolist(),
             "memory_estimate_gb": report.memory_estimate_bytes / 1e9}
    if args.process_id == 0:
        _write_outputs(args, report, data, timings, extra)
        log.info("results written to %s (λ=%g, test %s)", args.output, report.best_value,
                 {k: round(v, 4) for k, v in report.test_metrics.items()})
    watchdog.ping("finish")
    wait_for_peers("infae_scale_done")
    watchdog.stop()
    return 0


# ----------------------------------------------------------------------------------------------------------
# the local supervisor
# ----------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_argv(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for i, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == "--local-processes":
            skip = True
            continue
        if token.startswith("--local-processes="):
            continue
        out.append(token)
    return out


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _supervise(args, argv: Sequence[str]) -> int:
    n = args.local_processes
    port = _free_port()
    base = [sys.executable, "-m", "infae_kit.scale", *_child_argv(argv)]
    children = []
    for pid in range(n):
        cmd = base + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id", str(pid)]
        children.append(subprocess.Popen(cmd))
    log.info("started %d processes on 127.0.0.1:%d (pids %s)", n, port, [c.pid for c in children])
    failed_at = None
    first_failure = None
    stopped_here: set[int] = set()  # processes this supervisor terminated after the timeout
    while True:
        codes = [c.poll() for c in children]
        if all(code is not None for code in codes):
            break
        # A process killed by a signal is the cause; the others' exits (a lost peer) are the consequence, and
        # both can be seen in the same poll.
        bad = sorted(((i, code) for i, code in enumerate(codes) if code not in (None, 0)), key=lambda ic: ic[1] >= 0)
        if bad and failed_at is None:
            failed_at, first_failure = time.monotonic(), bad[0]
            log.error("process %d %s; waiting up to %.0f s for the others to stop", bad[0][0],
                      _describe_exit(bad[0][1]), args.timeout)
        if failed_at is not None and time.monotonic() - failed_at > args.timeout:
            for i, c in enumerate(children):
                if c.poll() is None:
                    stopped_here.add(i)
                    c.terminate()
            time.sleep(2)
            for c in children:
                if c.poll() is None:
                    c.kill()
        time.sleep(0.2)
    codes = [c.returncode for c in children]
    if all(code == 0 for code in codes):
        return 0
    killed = [(i, code) for i, code in enumerate(codes) if code < 0 and i not in stopped_here]
    first = killed[0] if killed else first_failure or next((i, code) for i, code in enumerate(codes) if code != 0)
    sys.stderr.write(
        f"infae_kit.scale: process {first[0]} of {n} {_describe_exit(first[1])}; the run was stopped "
        f"(exit statuses {codes}) and no results were written to {args.output}.\n")
    return 1


def _run_distributed(args) -> int:
    """:func:`_run_process` for one of several processes: any failure ends this process at once (a collective
    whose peer died leaves JAX's shutdown waiting for it), with a message naming the cause."""
    try:
        return _run_process(args)
    except InfaeError as exc:
        code, what = EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a collective that lost its peer raises XlaRuntimeError
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lost = any(word in text for word in ("Connection closed", "Gloo", "gloo", "DEADLINE", "UNAVAILABLE"))
        code = EXIT_PEER_LOST if lost else 1
        what = (f"a collective operation failed because another process stopped ({text})" if lost
                else f"{type(exc).__name__}: {text}")
    sys.stderr.write(f"infae_kit.scale: process {args.process_id} of {args.num_processes} stopped: {what}. "
                     "No results were written.\n")
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``); returns the exit status.

    0 on success, :data:`EXIT_BAD_INPUT` for bad input (the message says what to fix), 1 when a process started
    by ``--local-processes`` failed; a process of a multi-process run that loses a peer exits with
    :data:`EXIT_PEER_LOST`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        if args.local_processes:
            return _supervise(args, argv)
        if args.num_processes > 1:
            return _run_distributed(args)
        return _run_process(args)
    except InfaeError as exc:
        sys.stderr.write(f"infae_kit.scale: {type(exc).__name__}: {exc}\n")
        return EXIT_BAD_INPUT
