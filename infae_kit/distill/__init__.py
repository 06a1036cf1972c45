"""DISTILL-CF (paper §4, Algorithm 3, Appendix B.4): synthesise a small support of fake users for ∞-AE.

* :mod:`~infae_kit.distill.sampler` — the multi-step Gumbel sampler (custom VJP, O(μ·items) memory).
* :mod:`~infae_kit.distill.config` — :class:`DistillConfig`, the paper code's defaults, recorded configurations.
* :mod:`~infae_kit.distill.loop` — the bilevel objective, the outer loop, validation of a support.
* :mod:`~infae_kit.distill.artifact` — :class:`DistillResult`, the saved artifact, checkpoints.
* :mod:`~infae_kit.distill.cache` — runs cached on disk by config and data fingerprint, resumable.
* :mod:`~infae_kit.distill.search` — a budgeted grid search selected on validation.
"""

from infae_kit.caching import dataset_fingerprint, item_ids_hash
from infae_kit.distill.artifact import DistillResult, load_distilled
from infae_kit.distill.cache import distill_cache_path, distill_cached
from infae_kit.distill.config import (
    CI_CONFIG,
    LOSSES,
    PAPER_DISTILL_LAMBDA_GRID,
    PRESETS,
    RECORDED_CONFIGS,
    SUPPORT_MODES,
    DistillConfig,
    distill_config_for,
)
from infae_kit.distill.loop import (
    distill,
    distill_objective,
    initial_prior,
    sample_support,
    topk_binarize,
)
from infae_kit.distill.sampler import (
    NOISE_GENERATORS,
    gumbel_noise,
    hard_gumbel_support,
    multi_step_gumbel,
)

__all__ = [
    "CI_CONFIG",
    "LOSSES",
    "NOISE_GENERATORS",
    "PAPER_DISTILL_LAMBDA_GRID",
    "PRESETS",
    "RECORDED_CONFIGS",
    "SUPPORT_MODES",
    "DistillConfig",
    "DistillResult",
    "dataset_fingerprint",
    "distill",
    "distill_cache_path",
    "distill_cached",
    "distill_config_for",
    "distill_objective",
    "gumbel_noise",
    "hard_gumbel_support",
    "initial_prior",
    "item_ids_hash",
    "load_distilled",
    "multi_step_gumbel",
    "sample_support",
    "topk_binarize",
]
