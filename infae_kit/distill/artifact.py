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
from infae_kit.caching import (
    dataset_fingerprint,
    dataset_identity,
    item_ids_hash,
    set_aside,
)
from infae_kit.distill.config import DistillConfig
from infae_kit.errors import DamagedFileError
from infae_kit.io_utils import atomic_write_bytes, atomic_write_json

__all__ = [
    "CARD_NAME",
    "CHECKPOINT_MANIFEST",
    "SUPPORT_NAME",
    "DistillResult",
    "dataset_fingerprint",
    "dataset_identity",
    "item_ids_hash",
    "load_checkpoint",
    "load_distilled",
    "save_checkpoint",
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
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        config = DistillConfig.from_dict(card["config"])
        best_lambda, history = float(card["best_lambda"]), card["history"]
    except Exception as exc:  # JSONDecodeError, KeyError, ParameterError, ...
        raise DamagedFileError(card_path, f"{type(exc).__name__}: {exc}") from exc
    try:
        support = sp.csr_matrix(sp.load_npz(npz), dtype=np.float32)
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, ...
        raise DamagedFileError(npz, f"{type(exc).__name__}: {exc}") from exc
    if list(support.shape) != list(card.get("shape", [])):
        raise DamagedFileError(npz, f"shape {support.shape} but its data card says {card.get('shape')}")
    return DistillResult(support, best_lambda, history, config, card.get("timings", {}), card.get("dataset", {}),
                         test_metrics=card.get("test_metrics", {}))


_CKPT_GLOB = "ckpt_*.npz"
_STATE_KEY = "state_json"
_CKPT_KEPT = 2


def _ckpt_step(path: Path) -> int:
    try:
        return int(path.stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def save_checkpoint(directory: Path, step: int, prior: jax.Array | np.ndarray, opt_state: Any,
                    key: jax.Array | np.ndarray, best_support: np.ndarray | None, state: dict) -> None:
    """Write ``ckpt_<step>.npz`` then ``checkpoint.json`` naming it, each atomically.

    The npz is self-contained (arrays and the run's state as JSON), so any one of them can restart the run;
    the two newest are kept (the previous one is removed only once the new one is complete), so that a damaged
    newest checkpoint falls back to the one before it (:func:`load_checkpoint`).

    Args:
      directory: the run's checkpoint folder (created if missing).
      step: the outer step just completed.
      prior: ``(μ, items)`` learnable prior ``Xˢ``.
      opt_state: the optax optimiser state (a pytree of arrays).
      key: the PRNG key of the next step.
      best_support: ``(μ, items)`` best support so far, or None before the first validation.
      state: the run's JSON-serialisable state (config, history, λ, timings).
    """
    directory.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(opt_state)
    name = f"ckpt_{step:07d}.npz"
    manifest = dict(state, step=step, arrays=name, n_opt_leaves=len(leaves))
    arrays = {"prior": np.asarray(prior), "key": np.asarray(key),
              _STATE_KEY: np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)}
    for i, leaf in enumerate(leaves):
        arrays[f"opt_{i}"] = np.asarray(leaf)
    if best_support is not None:
        arrays["best_support"] = np.asarray(best_support)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(directory / name, buf.getvalue())
    atomic_write_json(directory / CHECKPOINT_MANIFEST, manifest)
    for old in sorted(directory.glob(_CKPT_GLOB), key=_ckpt_step, reverse=True)[_CKPT_KEPT:]:
        old.unlink(missing_ok=True)


def _read_manifest(path: Path) -> dict | None:
    """The manifest, or None (set aside with a warning) when it is unreadable."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("arrays"), str):
            raise ValueError("not a checkpoint manifest")
        return manifest
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        set_aside(path, f"{type(exc).__name__}: {exc}")
        return None


def _read_checkpoint(path: Path, manifest: dict | None, prior_template, opt_state_template):
    """``(state, prior, opt_state, key, best_support)`` from one npz; raises DamagedFileError if unusable."""
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if _STATE_KEY in arrays:
            state = json.loads(arrays.pop(_STATE_KEY).tobytes().decode("utf-8"))
        elif manifest is not None and manifest.get("arrays") == path.name:  # written before states were inlined
            state = manifest
        else:
            raise ValueError("no run state in it")
        treedef = jax.tree_util.tree_structure(opt_state_template)
        leaves = [jnp.asarray(arrays[f"opt_{i}"]) for i in range(state["n_opt_leaves"])]
        opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
        prior = arrays["prior"]
        if prior.shape != tuple(prior_template.shape):
            raise ValueError(f"prior of shape {prior.shape}, expected {tuple(prior_template.shape)}")
        for leaf, ref in zip(leaves, jax.tree_util.tree_leaves(opt_state_template)):
            if leaf.shape != ref.shape:
                raise ValueError(f"optimiser state of shape {leaf.shape}, expected {ref.shape}")
        return state, jnp.asarray(prior), opt_state, jnp.asarray(arrays["key"]), arrays.get("best_support")
    except Exception as exc:  # zipfile.BadZipFile, EOFError, zlib.error, KeyError, ValueError, ...
        raise DamagedFileError(path, f"{type(exc).__name__}: {exc}") from exc


def load_checkpoint(directory: Path | None, prior_template: jax.Array | np.ndarray, opt_state_template: Any
                    ) -> tuple[dict, jax.Array, Any, jax.Array, np.ndarray | None] | None:
    """The newest readable checkpoint of ``directory`` as ``(state, prior, opt_state, key, best_support)``.

    The manifest's checkpoint is tried first, then the other ``ckpt_*.npz`` newest first. A damaged file (a
    truncated manifest or npz, a wrong shape) is set aside as ``<name>.damaged-<timestamp>`` with a warning
    naming it (:func:`~infae_kit.caching.set_aside`) and the next one is tried. Returns None when no
    checkpoint is usable (the run starts from scratch).

    Args:
      directory: the run's checkpoint folder (None or missing: no checkpoint).
      prior_template: the ``(μ, items)`` prior the run starts from (its shape is checked).
      opt_state_template: an optimiser state of the run's structure (its tree and leaf shapes are used).
    """
    if directory is None or not directory.exists():
        return None
    manifest_path = directory / CHECKPOINT_MANIFEST
    manifest = _read_manifest(manifest_path) if manifest_path.exists() else None
    candidates = sorted(directory.glob(_CKPT_GLOB), key=_ckpt_step, reverse=True)
    if manifest is not None:
        named = directory / manifest["arrays"]
        candidates = [named] + [c for c in candidates if c != named]
    for path in candidates:
        if not path.exists():
            continue
        try:
            return _read_checkpoint(path, manifest, prior_template, opt_state_template)
        except DamagedFileError as exc:
            set_aside(path, exc.reason)
    return None
