"""Landmark ∞-AE sharded with JAX: user blocks over every device of every process, one ``psum`` per step.

:class:`ShardedEngine` is a :class:`~infae_kit.models.landmark_solver.BlockEngine` over a one-axis
:class:`jax.sharding.Mesh` (axis ``"users"``) of all devices of all processes (``jax.devices()``):

* each process reads its own contiguous share of the users (:meth:`ShardedEngine.local_users`) and, per step,
  one block of them per local device;
* the step's blocks form one global array sharded over ``"users"``
  (``jax.make_array_from_process_local_data`` with a :class:`~jax.sharding.NamedSharding`);
* ``shard_map`` computes, on every device, its block's NTK and ``K_bᵀ K_b``, and ``psum`` adds the ``m × m``
  normal equations (in float64) over the devices of all processes: every process receives the global sum;
* the ``m × items`` term ``X_bᵀ K_b`` is a sparse product on the host; it and the evaluation (per-user metrics and
  AUC pools) are gathered across processes once, at the end (``multihost_utils.process_allgather``).

Every process runs the same number of steps (a process with fewer users contributes empty, masked blocks), so
the collectives line up. With one device and one process it computes what
:class:`~infae_kit.models.landmark_solver.BlockEngine` computes; with several, the same sums in another order
(tests: scores to 1e-5, metrics equal).
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import EvaluationResult, MetricAccumulator, metrics_from_parts
from infae_kit.jax_compat import enable_x64, shard_map
from infae_kit.models.landmark_basis import (
    KernelSpec,
    block_kernel,
    block_normal_terms,
    block_scores,
    host_normal_terms,
)
from infae_kit.models.landmark_solver import BlockEngine

__all__ = ["AXIS", "ShardedEngine", "process_share"]

AXIS = "users"
"""Name of the mesh axis the user blocks are sharded over."""


def process_share(n_users: int, n_processes: int, process_index: int, block: int = 1) -> tuple[int, int]:
    """``(start, stop)`` of process ``process_index``'s contiguous share of ``n_users`` users.

    Shares are whole blocks of ``block`` users (numbers of blocks differ by ≤ 1), so the users are cut into the
    same blocks ``[k·block, (k+1)·block)`` whatever the number of processes: every block's float32 partial sums
    are then identical, and only the float64 order of adding them differs.
    """
    if n_processes < 1 or not 0 <= process_index < n_processes:
        raise ParameterError(f"process index {process_index} is not in [0, {n_processes}).")
    n_blocks = -(-int(n_users) // int(block))
    start = n_blocks * process_index // n_processes * block
    stop = n_blocks * (process_index + 1) // n_processes * block
    return min(start, n_users), min(stop, n_users)


class ShardedEngine(BlockEngine):
    """Shards landmark ∞-AE's user blocks over ``devices`` (default: every device of every process).

    Args:
      devices: the mesh's devices, in mesh order (default ``jax.devices()``: all processes' devices, grouped by
        process).
      on_step: called after every step (a liveness signal for a watchdog; see :mod:`infae_kit.scale.cli`).
    """

    def __init__(self, devices: Sequence | None = None, on_step: Callable[[], None] | None = None):
        self.devices = list(devices if devices is not None else jax.devices())
        if not self.devices:
            raise ParameterError("ShardedEngine needs at least one device.")
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.process_index = jax.process_index()
        self.n_processes = len({d.process_index for d in self.devices})
        self.local_devices = [d for d in self.devices if d.process_index == self.process_index]
        if not self.local_devices:
            raise ParameterError(f"none of the mesh's devices belongs to this process ({self.process_index}).")
        counts = {d.process_index: 0 for d in self.devices}
        for d in self.devices:
            counts[d.process_index] += 1
        if len(set(counts.values())) != 1:
            raise ParameterError(f"every process needs the same number of devices in the mesh, got {counts}.")
        self._process_rank = sorted(counts).index(self.process_index)
        self.on_step = on_step or (lambda: None)
        self.host_products = all(d.platform == "cpu" for d in self.devices)
        self._users = NamedSharding(self.mesh, P(AXIS))
        self._replicated = NamedSharding(self.mesh, P())

    @property
    def blocks_per_step(self) -> int:
        return len(self.local_devices)

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    # -- users and steps -------------------------------------------------------------------------------------
    def local_users(self, n_users: int, block: int = 1) -> tuple[int, int]:
        """``(start, stop)`` of this process's contiguous share of the users (:func:`process_share`)."""
        return process_share(int(n_users), self.n_processes, self._process_rank, block)

    def _max_over_processes(self, value: int) -> int:
        if self.n_processes == 1:
            return int(value)
        return int(np.max(multihost_utils.process_allgather(np.array([value], dtype=np.int32))))

    def steps(self, users: np.ndarray | tuple[int, int], block_users: int, n_users: int) -> Iterator[list]:
        """Yield, per step, one user selection per local device (slices of a ``(start, stop)`` range or slices of
        an index array, maybe empty); every process yields as many steps as the longest share needs, and
        ``on_step`` is called after each."""
        per_step = block_users * self.blocks_per_step
        if isinstance(users, tuple):
            start, stop = users
            longest = max(b - a for a, b in (process_share(n_users, self.n_processes, p, block_users)
                                             for p in range(self.n_processes)))
            n_steps = -(-longest // per_step)
            cut = lambda a, b: slice(min(start + a, stop), min(start + b, stop))  # noqa: E731
        else:
            users = np.asarray(users)
            n_steps = -(-self._max_over_processes(len(users)) // per_step)
            cut = lambda a, b: users[a:b]  # noqa: E731
        for s in range(n_steps):
            base = s * per_step
            yield [cut(base + i * block_users, base + (i + 1) * block_users) for i in range(self.blocks_per_step)]
            self.on_step()

    # -- device work ------------------------------------------------------------------------------------------
    def _global(self, local: np.ndarray) -> jax.Array:
        """Stack ``(local_devices, rows, …)`` → one global array sharded over the users axis."""
        flat = local.reshape((-1,) + local.shape[2:])
        shape = (local.shape[1] * self.n_devices,) + local.shape[2:]
        return jax.make_array_from_process_local_data(self._users, flat, shape)

    def put(self, array: np.ndarray) -> jax.Array:
        """A host array (β, landmark norms; the same in every process) replicated over the mesh."""
        array = np.asarray(array)
        return jax.make_array_from_process_local_data(self._replicated, array, array.shape)

    @functools.cached_property
    def _normal_fn(self):
        def per_device(gram, norms_b, valid, norms_l, spec):
            k, ktk, tr = block_normal_terms(gram, norms_b, norms_l, valid, spec)
            return k, jax.lax.psum(ktk.astype(jnp.float64), AXIS), jax.lax.psum(tr.astype(jnp.float64), AXIS)

        def run(gram, norms_b, valid, norms_l, spec):
            fn = shard_map(functools.partial(per_device, spec=spec), self.mesh,
                           in_specs=(P(AXIS), P(AXIS), P(AXIS), P()), out_specs=(P(AXIS), P(), P()))
            return fn(gram, norms_b, valid, norms_l)

        return jax.jit(run, static_argnames=("spec",))

    @functools.cached_property
    def _kernel_fn(self):
        def run(gram, norms_b, valid, norms_l, spec):
            fn = shard_map(lambda g, n, v, nl: block_kernel(g, n, nl, v, spec), self.mesh,
                           in_specs=(P(AXIS), P(AXIS), P(AXIS), P()), out_specs=P(AXIS))
            return fn(gram, norms_b, valid, norms_l)

        return jax.jit(run, static_argnames=("spec",))

    @functools.cached_property
    def _scores_fn(self):
        fn = shard_map(block_scores, self.mesh, in_specs=(P(AXIS), P()), out_specs=P(AXIS))
        return jax.jit(fn)

    def _local_blocks(self, array: jax.Array, sizes: list[int]) -> list[np.ndarray]:
        """This process's blocks of a users-sharded array, in local device order, trimmed to their sizes."""
        shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
        return [np.asarray(s.data)[:n] for s, n in zip(shards, sizes)]

    def normal_terms(self, grams: list[np.ndarray], norms: list[np.ndarray], basis_norms: jax.Array,
                     spec: KernelSpec, rows: int) -> tuple[list[np.ndarray], np.ndarray, float]:
        """``(kernels, Σ K_bᵀ K_b (m, m) float64, Σ Θ(x,x))`` of one step: this process's ``(b_i, m)`` block
        kernels on the host, and the step's sums over every device of every process (``psum``). Arguments as in
        :meth:`BlockEngine.normal_terms`, one block per local device."""
        if self.host_products:
            sizes = [x.shape[0] for x in norms]
            kernels = self._local_blocks(self.kernels(grams, norms, basis_norms, spec, rows), sizes)
            return (kernels, *host_normal_terms(kernels, norms, spec))
        g, n, v = self._stack(grams, norms, rows, np.dtype(basis_norms.dtype))
        k, ktk, tr = self._normal_fn(self._global(g), self._global(n), self._global(v), basis_norms, spec=spec)
        sizes = [x.shape[0] for x in norms]
        return self._local_blocks(k, sizes), np.asarray(ktk.addressable_data(0)), float(tr.addressable_data(0))

    def kernels(self, grams: list[np.ndarray], norms: list[np.ndarray], basis_norms: jax.Array, spec: KernelSpec,
                rows: int) -> jax.Array:
        """The step's block kernels as one global ``(rows · devices, m)`` array sharded over the users axis (for
        :meth:`scores`)."""
        g, n, v = self._stack(grams, norms, rows, np.dtype(basis_norms.dtype))
        return self._kernel_fn(self._global(g), self._global(n), self._global(v), basis_norms, spec=spec)

    def scores(self, kernels: jax.Array, beta: jax.Array, sizes: list[int]) -> list[np.ndarray]:
        """Host ``(b_i, items)`` scores of this process's blocks for one replicated ``(m, items)`` β."""
        return self._local_blocks(self._scores_fn(kernels, beta), sizes)

    # -- across processes -------------------------------------------------------------------------------------
    def sum_across_processes(self, array: np.ndarray) -> np.ndarray:
        """Sum of a float64 host array over every process (gathered, then added in process order)."""
        if self.n_processes == 1:
            return array
        with enable_x64():  # float64 stays float64 through the collective
            gathered = multihost_utils.process_allgather(np.ascontiguousarray(array))
        return np.sum(gathered, axis=0)  # the same order on every process: identical results everywhere

    def _gather_ragged(self, array: np.ndarray) -> np.ndarray:
        """Concatenate every process's 1-D ``array`` (any lengths) in process order."""
        with enable_x64():  # float64 and int64 stay 64-bit through the collective
            lengths = multihost_utils.process_allgather(np.array([array.shape[0]], dtype=np.int64)).ravel()
            padded = np.zeros(int(lengths.max()), dtype=array.dtype)
            padded[: array.shape[0]] = array
            gathered = multihost_utils.process_allgather(padded)
        return np.concatenate([gathered[p, : lengths[p]] for p in range(len(lengths))])

    def merge_evaluation(self, acc: MetricAccumulator, ks: Sequence[int], n_users_total: int) -> EvaluationResult:
        """The evaluation of all users: every process's per-user metrics and AUC pools gathered, in process
        order, and the metrics computed from them."""
        if self.n_processes == 1:
            return acc.result()
        local = acc.result()  # checks that every local user was scored
        per_user = {name: self._gather_ragged(values) for name, values in local.per_user.items()}
        pools = acc.auc_pools()
        pools = None if pools is None else (self._gather_ragged(pools[0]), self._gather_ragged(pools[1]))
        n = next(iter(per_user.values())).shape[0]
        return EvaluationResult(metrics_from_parts(per_user, pools, ks), per_user, n, None)


def wait_for_peers(name: str) -> float:
    """Barrier over every process (returns the seconds waited); a no-op with one process."""
    t = time.perf_counter()
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
    return time.perf_counter() - t
