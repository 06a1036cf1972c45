"""Shared pieces of the continual-learning tests (``test_continual_models``, ``test_continual_selection``): a
tiny MVAE configuration and a parameter comparison (their fixtures ``split`` and ``small_matrix`` are in
``conftest.py``)."""

from __future__ import annotations

import jax
import numpy as np

TINY = {"latent_size": 8, "hidden_size": 16, "batch_size": 32, "epochs": 2, "learning_rate": 0.01}
"""An MVAE that trains in a fraction of a second."""


def max_param_diff(a, b) -> float:
    """Largest absolute difference between two parameter pytrees of the same structure."""
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
