"""Landmark ∞-AE at scale: sharded over devices and processes with JAX, and its command-line entry point.

* :mod:`infae_kit.scale.sharding` — :class:`~infae_kit.scale.sharding.ShardedEngine`: user blocks over a
  ``jax.sharding.Mesh`` of every device of every process, ``shard_map`` + ``psum`` of the normal equations.
* :mod:`infae_kit.scale.rows_cache` — a memory-mapped dataset layout from which each process reads only its
  own users.
* :mod:`infae_kit.scale.cli` — ``python -m infae_kit.scale fit ...`` (one process per host, or
  ``--local-processes P`` on this machine).

The model itself is :mod:`infae_kit.models.landmark`; this package imports nothing at import time.
"""

__all__: list[str] = []
