"""Fixtures shared by several test modules."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.data import load_dataset
from infae_kit.experiments import continual as C


@pytest.fixture(scope="module")
def split() -> C.PeriodSplit:
    """160 synthetic users × 120 items (≥ 50 AUC negatives per user) cut into 4 periods."""
    data = load_dataset("synthetic", n_users=160, n_items=120, mean_interactions=12, seed=1)
    return C.split_into_periods(data, 4)


@pytest.fixture(scope="module")
def small_matrix() -> sp.csr_matrix:
    """``(40, 30)`` binary rows of density about 0.25 (seeded)."""
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((40, 30)) < 0.25).astype(np.float32))
