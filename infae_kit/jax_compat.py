"""The few JAX names whose home moved between the pinned jax 0.5.3 and current releases (0.10+), in one place.

* :func:`enable_x64` — a context manager turning JAX's 64-bit mode on (or off) for its body:
  ``jax.experimental.enable_x64`` up to jax 0.6, the ``jax.enable_x64`` config state afterwards.
* :func:`shard_map` — ``jax.experimental.shard_map.shard_map(..., check_rep=False)`` on old releases,
  ``jax.shard_map(..., check_vma=False)`` on new ones (the experimental one is deprecated from 0.8).

Code that must run on both (the landmark ∞-AE, the sharded engine, the GPU benchmark) imports them from here.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import jax

__all__ = ["enable_x64", "shard_map"]


@contextlib.contextmanager
def enable_x64(new_val: bool = True) -> Iterator[None]:
    """Context manager: JAX 64-bit mode set to ``new_val`` inside the ``with`` block, restored after it."""
    try:  # jax <= 0.6
        from jax.experimental import enable_x64 as _old_enable_x64
    except ImportError:  # jax >= 0.7: the config state is itself a context manager
        with jax.enable_x64(bool(new_val)):
            yield
        return
    with _old_enable_x64(bool(new_val)):
        yield


def shard_map(f: Callable, mesh: Any, in_specs: Any, out_specs: Any) -> Callable:
    """``shard_map(f, mesh, in_specs, out_specs)`` without replication checks, on old and new JAX alike."""
    new = getattr(jax, "shard_map", None)
    if new is not None:
        return new(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map as old  # jax < 0.7

    return old(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)
