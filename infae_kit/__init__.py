"""infae_kit: ∞-AE and DISTILL-CF (Sachdeva et al., NeurIPS 2022) as a notebook-first research kit.

The names a notebook needs are importable from the package itself (loaded on first use, so ``import infae_kit``
stays cheap)::

    import infae_kit as k
    data = k.load_dataset("ml-1m")
    report = k.tune_and_evaluate_infinite_ae(data)

The package is laid out like the paper:

* :mod:`infae_kit.data` — datasets, the paper's split, registry, downloads, synthetic data, statistics.
* :mod:`infae_kit.models` — the NTK, ∞-AE, PopRec / EASE, the trained competitors of Table 1.
* :mod:`infae_kit.distill` — DISTILL-CF (§4): the Gumbel sampler, the bilevel loop, artifacts, search.
* :mod:`infae_kit.evaluation` — metrics, the evaluation protocol, selection on validation, results, figures.
* :mod:`infae_kit.experiments` — §5 and Appendix B.6: sampling, noise, sweeps, AR-CF, privacy, continual learning.
* :mod:`infae_kit.checks`, :mod:`infae_kit.errors`, :mod:`infae_kit.io_utils`, :mod:`infae_kit.paths`,
  :mod:`infae_kit.caching` — shared input checks, error types, atomic writes, folders, and what every on-disk
  cache shares (the data fingerprint, entry paths, format checks, damaged entries).
* :mod:`infae_kit.scale` — landmark ∞-AE sharded over devices and processes with JAX, ``python -m infae_kit.scale``.
* :mod:`infae_kit.runner` — runs notebooks × datasets with papermill and gathers their results.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC: dict[str, str] = {
    # data
    "load_dataset": "infae_kit.data.registry",
    "list_datasets": "infae_kit.data.registry",
    "RecDataset": "infae_kit.data.dataset",
    # models
    "Recommender": "infae_kit.models.base",
    "InfiniteAE": "infae_kit.models.infinite_ae",
    "tune_and_evaluate_infinite_ae": "infae_kit.models.infinite_ae",
    "LandmarkInfiniteAE": "infae_kit.models.landmark",
    "tune_and_evaluate_landmark": "infae_kit.models.landmark",
    "EASE": "infae_kit.models.baselines",
    "PopRec": "infae_kit.models.baselines",
    "make_competitor": "infae_kit.models.competitors",
    # DISTILL-CF
    "DistillConfig": "infae_kit.distill.config",
    "distill_config_for": "infae_kit.distill.config",
    "distill": "infae_kit.distill.loop",
    "distill_cached": "infae_kit.distill.cache",
    "load_distilled": "infae_kit.distill.artifact",
    # samplers and noise
    "sample": "infae_kit.experiments.sampling",
    "add_noise": "infae_kit.experiments.noise",
    # evaluation and the results contract
    "evaluate_model": "infae_kit.evaluation.protocol",
    "tune_and_evaluate": "infae_kit.evaluation.selection",
    "metric_names": "infae_kit.evaluation.protocol",
    "write_results": "infae_kit.evaluation.results",
    "read_results": "infae_kit.evaluation.results",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'infae_kit' has no attribute {name!r}; public names: {sorted(_PUBLIC)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
