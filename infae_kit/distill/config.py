"""DISTILL-CF's hyper-parameters (:class:`DistillConfig`), the paper code's defaults and the recorded per-dataset
configurations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infae_kit.checks import DictConfig, is_int
from infae_kit.distill.sampler import NOISE_GENERATORS
from infae_kit.errors import ParameterError

__all__ = [
    "CI_CONFIG",
    "EARLY_EVAL_STEPS",
    "LOSSES",
    "OPTIONAL_FIELDS",
    "PAPER_DISTILL_LAMBDA_GRID",
    "PRESETS",
    "RECORDED_CONFIGS",
    "SELECT_BY",
    "SUPPORT_MODES",
    "DistillConfig",
    "distill_config_for",
]

LOSSES = ("multinomial", "bce")
SUPPORT_MODES = ("topk", "hard", "soft")
PAPER_DISTILL_LAMBDA_GRID: tuple[float, ...] = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)
"""Inner-loop λ grid of DISTILL-CF (Table 3), re-searched at every validation."""
EARLY_EVAL_STEPS: tuple[int, ...] = (25, 50, 75, 100, 125, 150, 175, 200)
"""Validation steps of the paper's code, in addition to every ``log_freq`` steps."""
SELECT_BY = "HR@100"
"""Validation metric that picks the inner λ and the best step."""


@dataclass(frozen=True)
class DistillConfig(DictConfig):
    """Hyper-parameters of DISTILL-CF; defaults are the paper code's (``distill_cf/hyper_params.py``).

    Attributes:
      budget: μ, number of fake users (``user_support``).
      gamma: γ, Gumbel samples per fake user and step (``num_per_user``).
      tau: Gumbel temperature τ (``gumbel_tau``; the released grid uses 0.3/0.5/0.7/5.0).
      lambda2: λ₂, weight of the cardinality penalty (``cardinality_reg``), which the loss divides by the
        average number of train interactions per user.
      lr: Adam learning rate.
      steps: outer steps ξ.
      batch_size: real users per step (−1 = all users, the default, densified once; otherwise a seeded batch of
        ``batch_size`` users read from the sparse train matrix at each step, so that memory does not grow with
        the number of users).
      accumulate: batches of ``batch_size`` users whose gradients are averaged into one Adam step (gradient
        accumulation; the Gumbel key advances once per step, as the paper's code does per accumulation cycle).
        The sampled support is computed once per step and shared by its batches. Needs ``batch_size`` > 0
        when > 1.
      loss: ``"multinomial"`` (the code's −Σ log_softmax · x) or ``"bce"`` (the printed Eq. 3).
      val_lambdas: inner-λ grid re-searched at each validation.
      eval_steps: validation steps besides the multiples of ``log_freq`` (the code: 25, 50, …, 200).
      log_freq: validate every ``log_freq`` steps.
      patience: stop when a validation finds no improvement and the best is ``patience`` or more steps old.
      seed: seeds the choice of the initial users, the PRNG key and the user batches.
      checkpoint_every: write a checkpoint every this many steps (0 = never).
      support: how the released and validated support is discretised: ``"soft"`` (the sampled X̂ˢ as is, the
        paper's code), ``"topk"`` or ``"hard"`` (binary); see the module docstring.
      depth: hidden layers of the ∞-AE whose NTK is used (the paper: 1).
      noise: the Gumbel noise generator, ``"hash"`` (fast, default) or ``"threefry"`` (``jax.random.gumbel``,
        as the paper's code); see :func:`gumbel_noise`.
      val_users: validate on a seeded sample of this many users (−1 = every user, the default): on datasets of
        hundreds of thousands of users a validation of every λ over everyone would cost more than many steps.
    """

    budget: int = 500
    gamma: int = 200
    tau: float = 10.0
    lambda2: float = 1e-3
    lr: float = 0.04
    steps: int = 500
    batch_size: int = -1
    loss: str = "multinomial"
    val_lambdas: tuple[float, ...] = PAPER_DISTILL_LAMBDA_GRID
    eval_steps: tuple[int, ...] = EARLY_EVAL_STEPS
    log_freq: int = 40
    patience: int = 150
    seed: int = 42
    checkpoint_every: int = 0
    support: str = "soft"
    depth: int = 1
    noise: str = "hash"
    accumulate: int = 1
    val_users: int = -1

    def __post_init__(self) -> None:
        def bad(name, want):
            raise self.field_error(name, want)

        self.check_int_fields(("budget", "gamma", "steps", "log_freq", "depth", "accumulate"), 1)
        self.check_int_fields(("patience", "checkpoint_every"), 0)
        if not is_int(self.seed):
            bad("seed", "an integer")
        if not is_int(self.batch_size) or (self.batch_size < 1 and self.batch_size != -1):
            bad("batch_size", "a positive integer or -1 (all users)")
        if self.accumulate > 1 and self.batch_size == -1:
            bad("accumulate", "1 when batch_size is -1 (all users); set batch_size to accumulate batches")
        if not is_int(self.val_users) or (self.val_users < 1 and self.val_users != -1):
            bad("val_users", "a positive integer or -1 (every user)")
        self.check_real_field("tau", 0, low_open=True)
        self.check_real_field("lr", 0, low_open=True)
        self.check_real_field("lambda2", 0)
        self.check_choice_field("loss", LOSSES)
        self.check_choice_field("support", SUPPORT_MODES)
        self.check_choice_field("noise", NOISE_GENERATORS)
        try:
            lams = tuple(float(v) for v in self.val_lambdas)
        except (TypeError, ValueError):
            bad("val_lambdas", "a non-empty sequence of finite numbers > 0")
        if not lams or any(isinstance(v, bool) or not math.isfinite(v) or v <= 0 for v in lams):
            bad("val_lambdas", "a non-empty sequence of finite numbers > 0 (λ = 0 breaks down in float32)")
        try:
            evs = tuple(self.eval_steps)
        except TypeError:
            bad("eval_steps", "a sequence of integers >= 1")
        if any(not is_int(v) or v < 1 for v in evs):
            bad("eval_steps", "a sequence of integers >= 1")
        object.__setattr__(self, "val_lambdas", lams)
        object.__setattr__(self, "eval_steps", tuple(sorted({int(v) for v in evs})))

    def is_eval_step(self, step: int) -> bool:
        """Whether the paper's schedule validates after ``step``."""
        return step in self.eval_steps or step % self.log_freq == 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values; :data:`OPTIONAL_FIELDS` only when not at their default.

        Runs are cached under a hash of this dict, so a field added to the config leaves the keys of runs that
        do not use it unchanged.
        """
        d = super().to_dict()
        for name, default in OPTIONAL_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d


OPTIONAL_FIELDS: dict[str, Any] = {"accumulate": 1, "val_users": -1}
"""Fields that :meth:`DistillConfig.to_dict` leaves out at their default (see there)."""

PRESETS = ("recorded", "ci", "paper-code")
CI_CONFIG: dict[str, Any] = {"budget": 50, "gamma": 50, "steps": 30}
"""CI-sized run (about a minute on 2 CPUs): too short to reach Table 1, enough to exercise every step."""
RECORDED_CONFIGS: dict[str, dict[str, Any]] = {
    # The best configuration measured per dataset by `python -m infae_kit.distill.search` (selected on validation
    # NDCG@10; see docs/results.md, "DISTILL-CF + ∞-AE"); what notebook 03 runs by default. Datasets not listed run the paper
    # code's defaults (DistillConfig()).
    # magazine: tau in {5, 10} x gamma in {100, 200}, 200 steps; val NDCG@10 1.95 (tau 5, gamma 200) > 1.91 > 1.84.
    "magazine": {"budget": 500, "gamma": 200, "tau": 5.0, "lambda2": 1e-3, "steps": 200},
    "ml-1m": {"budget": 500, "gamma": 200, "tau": 10.0, "lambda2": 1e-3, "steps": 300},
    # douban-book, douban-music: tau in {5, 10} at gamma 50, and tau 10 at gamma 200, 150 steps;
    # val NDCG@10 book 5.56 (tau 10, gamma 50) > 5.45 > 5.27, music 3.59 (tau 10, gamma 200) > 3.52 > 3.47.
    "douban-book": {"budget": 500, "gamma": 50, "tau": 10.0, "lambda2": 1e-3, "steps": 150},
    "douban-music": {"budget": 500, "gamma": 200, "tau": 10.0, "lambda2": 1e-3, "steps": 150},
}


def distill_config_for(dataset: str, preset: str = "recorded", **overrides: Any) -> DistillConfig:
    """The :class:`DistillConfig` of ``preset`` for ``dataset``, with ``overrides`` (None values ignored) on top.

    ``"recorded"``: the best configuration measured for the dataset (:data:`RECORDED_CONFIGS`; the paper code's
    defaults for a dataset without one). ``"paper-code"``: the paper code's defaults. ``"ci"``: a CI-sized run
    (:data:`CI_CONFIG`). Runs of at most 120 steps validate every ``steps // 3`` steps (besides the paper's
    early steps) so that they get a few validations; longer ones keep the paper's every-40 schedule.
    """
    if preset not in PRESETS:
        raise ParameterError(f"preset must be one of {PRESETS}, got {preset!r}")
    base: dict[str, Any] = {}
    if preset == "recorded":
        base = dict(RECORDED_CONFIGS.get(dataset, {}))
    elif preset == "ci":
        base = dict(CI_CONFIG)
    base.update({k: v for k, v in overrides.items() if v is not None})
    steps = int(base.get("steps", DistillConfig.steps))
    base.setdefault("log_freq", min(40, max(steps // 3, 1)))
    return DistillConfig(**base)


