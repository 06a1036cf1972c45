"""A distilled support as an artifact (``support.npz`` + ``datacard.json``) and the run's checkpoints.

The dataset identity a support is tied to (:func:`dataset_fingerprint`, :func:`dataset_identity`,
:func:`item_ids_hash`) is the kit's one data fingerprint, :mod:`infae_kit.caching`; it is re-exported here."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from infae_kit import __version__
from infae_kit.caching import dataset_fingerprint, dataset_identity, item_ids_hash
from infae_kit.distill.config import DistillConfig
from infae_kit.errors import DataError
from infae_kit.io_utils import atomic_write_bytes, atomic_write_json

__all__ = [
    "CHECKPOINT_MANIFEST",
    "CARD_NAME",
    "SUPPORT_NAME",
    "DistillResult",
    "load_distilled",
    "save_checkpoint",
    "load_checkpoint",
    "dataset_fingerprint",
    "dataset_identity",
    "item_ids_hash",
]

CHECKPOINT_MANIFEST = "checkpoint.json"
CARD_NAME = "datacard.json"
SUPPORT_NAME = "support.npz"


@dataclass
class DistillResult:
    """Outcome of :func:`distill`.

    Attributes:
      best_support: ``(μ, items)`` float32 CSR, the support with the best validation HR@100 (values in [0, 1]
        for ``support="soft"``, binary for ``"topk"`` and ``"hard"``).
      best_lambda: the inner λ picked on validation for that support (use it to fit ∞-AE on it).
      history: ``loss`` (one per step run), ``evaluations`` (a list of ``{step, lambda, metrics,
        metrics_by_lambda}``, the first at step 0 on the initial support), ``best_step``, ``best_metric``,
        ``stopped_early``, ``steps_run``.
      config: the :class:`DistillConfig`.
      timings: seconds (``total``, ``steps``, ``validation``, ``first_step`` (includes compilation),
        ``s_per_step`` (mean over steps after the first)).
      dataset: dataset card (``name``, ``n_users``, ``n_items``, ``item_ids_sha256``, ``avg_interactions``).
      prior: the final learnable prior ``Xˢ`` (dense ``(μ, items)`` float32), when the run produced it.
      test_metrics: test metrics of ∞-AE fitted on the support with ``best_lambda``, once the caller has
        measured them (:func:`distill` never looks at test data); saved in the data card.
    """

    best_support: sp.csr_matrix
    best_lambda: float
    history: dict[str, Any]
    config: DistillConfig
    timings: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    prior: np.ndarray | None = field(default=None, repr=False)
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def best_val_metrics(self) -> dict[str, float]:
        """Validation metrics of the best support (at ``history["best_step"]``)."""
        for ev in self.history.get("evaluations", []):
            if ev["step"] == self.history.get("best_step"):
                return dict(ev["metrics"])
        return {}

    def data_card(self) -> dict[str, Any]:
        """JSON-ready description of the support (what :meth:`save` writes next to the matrix)."""
        s = self.best_support
        n_cells = s.shape[0] * s.shape[1]
        row_nnz = np.diff(s.indptr)
        c = self.config
        return {
            "kind": "DISTILL-CF support",
            "kit_version": __version__,
            "dataset": dict(self.dataset),
            "shape": list(s.shape),
            "budget": c.budget, "gamma": c.gamma, "tau": c.tau, "lambda2": c.lambda2, "seed": c.seed,
            "steps_run": self.history.get("steps_run"), "best_step": self.history.get("best_step"),
            "stopped_early": self.history.get("stopped_early"),
            "discretisation": c.support,
            "binary": bool(s.nnz == 0 or np.all(s.data == 1.0)),
            "best_lambda": self.best_lambda,
            "validation_metrics": self.best_val_metrics,
            "test_metrics": dict(self.test_metrics),
            "sparsity": {
                "nnz": int(s.nnz), "density": float(s.nnz / n_cells) if n_cells else 0.0,
                "sparsity": float(1.0 - s.nnz / n_cells) if n_cells else 1.0,
                "mean_items_per_user": float(row_nnz.mean()) if len(row_nnz) else 0.0,
                "mean_row_sum": float(np.asarray(s.sum(axis=1)).mean()) if s.shape[0] else 0.0,
            },
            "config": c.to_dict(),
            "timings": dict(self.timings),
            "history": self.history,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path/support.npz`` (scipy.sparse) and ``path/datacard.json``, each atomically. Returns ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        sp.save_npz(buf, sp.csr_matrix(self.best_support, dtype=np.float32), compressed=True)
        atomic_write_bytes(path / SUPPORT_NAME, buf.getvalue())
        atomic_write_json(path / CARD_NAME, self.data_card())
        return path


def load_distilled(path: str | os.PathLike) -> DistillResult:
    """Read a support written by :meth:`DistillResult.save` (the prior is not part of the artifact)."""
    path = Path(path)
    npz, card_path = path / SUPPORT_NAME, path / CARD_NAME
    for p in (npz, card_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: {path} is not a saved DISTILL-CF support")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    support = sp.csr_matrix(sp.load_npz(npz), dtype=np.float32)
    if list(support.shape) != list(card["shape"]):
        raise DataError(f"{npz} has shape {support.shape} but its data card says {card['shape']}")
    return DistillResult(support, float(card["best_lambda"]), card["history"], DistillConfig.from_dict(card["config"]),
                         card.get("timings", {}), card.get("dataset", {}),
                         test_metrics=card.get("test_metrics", {}))


def save_checkpoint(directory: Path, step: int, prior: jax.Array, opt_state: Any, key: jax.Array,
                    best_support: np.ndarray | None, state: dict) -> None:
    """``ckpt_<step>.npz`` (arrays) then ``checkpoint.json`` (manifest naming it), both atomic; old npz removed."""
    directory.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(opt_state)
    arrays = {"prior": np.asarray(prior), "key": np.asarray(key)}
    for i, leaf in enumerate(leaves):
        arrays[f"opt_{i}"] = np.asarray(leaf)
    if best_support is not None:
        arrays["best_support"] = np.asarray(best_support)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    name = f"ckpt_{step:07d}.npz"
    atomic_write_bytes(directory / name, buf.getvalue())
    manifest = dict(state, step=step, arrays=name, n_opt_leaves=len(leaves))
    atomic_write_json(directory / CHECKPOINT_MANIFEST, manifest)
    for old in directory.glob("ckpt_*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(directory: Path, opt_state_template: Any) -> tuple[dict, jax.Array, Any, jax.Array,
                                                                        np.ndarray | None] | None:
    """The checkpoint :func:`save_checkpoint` wrote in ``directory``: ``(manifest, prior (μ, items), optimiser
    state shaped like ``opt_state_template``, PRNG key, best support or None)``; ``None`` when there is none."""
    manifest_path = directory / CHECKPOINT_MANIFEST
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    with np.load(directory / manifest["arrays"]) as z:
        arrays = {k: z[k] for k in z.files}
    treedef = jax.tree_util.tree_structure(opt_state_template)
    leaves = [jnp.asarray(arrays[f"opt_{i}"]) for i in range(manifest["n_opt_leaves"])]
    opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    return manifest, jnp.asarray(arrays["prior"]), opt_state, jnp.asarray(arrays["key"]), arrays.get("best_support")
