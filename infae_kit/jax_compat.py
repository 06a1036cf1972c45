"""The few JAX names whose home moved between the pinned jax 0.5.3 and current releases (0.6 – 0.11).

The kit pins jax 0.5.3 (neural-tangents 0.6.5 imports with nothing newer), but its own code paths — ∞-AE,
landmark ∞-AE, DISTILL-CF — also run on a GPU machine's current JAX. Import these names from here.

* :func:`enable_x64` — context manager turning JAX's 64-bit mode on or off for a block
  (``jax.experimental.enable_x64`` up to 0.5, ``jax.enable_x64`` later).
* :func:`shard_map` — ``jax.experimental.shard_map.shard_map`` up to 0.5, ``jax.shard_map`` later.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import jax

__all__ = ["enable_x64", "shard_map"]

try:  # jax <= 0.5
    from jax.experimental import enable_x64 as _enable_x64_experimental
except ImportError:  # jax >= 0.6
    _enable_x64_experimental = None


@contextlib.contextmanager
def enable_x64(new_val: bool = True) -> Iterator[None]:
    """Run the block with JAX's 64-bit mode set to ``new_val`` (restored afterwards)."""
    if _enable_x64_experimental is not None:
        with _enable_x64_experimental(new_val):
            yield
    else:
        with jax.enable_x64(new_val):
            yield


if hasattr(jax, "shard_map"):  # jax >= 0.6
    shard_map = jax.shard_map
else:  # jax <= 0.5
    from jax.experimental.shard_map import shard_map  # noqa: F401
