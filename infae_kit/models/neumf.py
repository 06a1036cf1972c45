"""NeuMF: ``α + β_u + β_i + φ(γ_u, γ_i)`` with φ the GMF ⊕ MLP tower of He et al. (2017), trained with BPR,
and its two towers, :class:`GMF` and :class:`NCFMLP`, as models of their own.

By default NeuMF is trained as the paper describes it (Appendix B.1): both branches from a random
initialisation, Adam, L2 on the embeddings only. He et al. (2017, Section 3.4.1) train it differently, and
:class:`NeuMF` has their recipe as options, each off by default:

* ``pretrain=True``: GMF and the MLP model are first trained on their own (Adam, early stopping on validation
  HR@100), then NeuMF starts from their parameters with the output layer ``[α·w_GMF ; (1 − α)·w_MLP]``
  (``pretrain_alpha`` = α, He et al.: 0.5) and the biases ``α·b_GMF + (1 − α)·b_MLP``, so that its first
  score is exactly ``α·s_GMF + (1 − α)·s_MLP``. The towers are cached on disk (keyed by their configuration
  and the train and validation matrices), so a search over the fine-tuning settings trains them once.
* ``optimizer="sgd"``: the NeuMF training (the fine-tuning, when pre-trained) uses plain SGD (no momentum),
  He et al.'s choice after pre-training; ``learning_rate`` is its step and ``pretrain_learning_rate`` the
  towers' Adam step.
* ``mlp_l2``: L2 on the MLP layers' weight matrices (He et al.'s ``reg_layers``), ``½·mlp_l2·Σ_l ‖W_l‖²``
  added to every mini-batch's loss.

One more option is not He et al.'s: ``output_l2``, L2 on the output layer's weights. The L2 on the embeddings
(``l2``) alone does not bind on a GMF branch, whose score ``w·(γ_u ⊙ γ_i)`` is unchanged when ``γ_u, γ_i`` are
scaled by ``1/√c`` and ``w`` by ``c`` while their penalty falls by ``c``; MF (``w`` fixed to ones) has no such
escape.
"""

from __future__ import annotations

import io
import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit.checks import (MatrixLike, binary_interactions, check_interactions, non_negative_float,
                              positive_float, positive_int)
from infae_kit.errors import ParameterError
from infae_kit.io_utils import atomic_write_bytes
from infae_kit.models.training import BPRRecommender, apply_dropout, glorot_init, normal_init

__all__ = [
    "NeuMF",
    "GMF",
    "NCFMLP",
    "NEUMF_OPTIMIZERS",
    "TOWER_CACHE_FORMAT",
    "default_tower_cache_dir",
    "neumf_params_from_towers",
    "tower_cache_path",
]

logger = logging.getLogger(__name__)

NEUMF_OPTIMIZERS = ("adam", "sgd")
"""Optimisers of NeuMF's own training: Adam (the kit's default for every model) or plain SGD (He et al.'s
fine-tuning after pre-training)."""

TOWER_CACHE_FORMAT = 1
"""Version of the pre-trained tower files; a file of another version is recomputed."""


# ----------------------------------------------------------------------------------------------------------
# pieces shared by NeuMF and its towers
# ----------------------------------------------------------------------------------------------------------
def _biases(params, users, items):
    return params["global_bias"] + params["user_bias"][users] + params["item_bias"][items]


def _embedding_pair(params, user_table: str, item_table: str, users, items, keys, dropout: float, train: bool):
    user, item = params[user_table][users], params[item_table][items]
    if train:
        user, item = apply_dropout(keys[0], user, dropout), apply_dropout(keys[1], item, dropout)
    return user, item


def _embedding_l2(params, user_table: str, item_table: str, users, pos, neg):
    return (jnp.sum(params[user_table][users] ** 2, -1) + jnp.sum(params[item_table][pos] ** 2, -1)
            + jnp.sum(params[item_table][neg] ** 2, -1))


def _mlp_layers(keys, latent_size: int, n_layers: int) -> list[dict]:
    layers, fan_in = [], 2 * latent_size
    for layer in range(n_layers):
        layers.append({"w": glorot_init(keys[layer], fan_in, latent_size), "b": jnp.zeros(latent_size, jnp.float32)})
        fan_in = latent_size
    return layers


def _mlp_forward(layers, user, item):
    h = jnp.concatenate([user, item], axis=-1)
    for layer in layers:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h


class _DenseWeightPenalty:
    """Adds ``mlp_l2 · ½ Σ_l ‖W_l‖²`` (the MLP layers' weight matrices, not their biases) and
    ``output_l2 · ½ ‖w_out‖²`` (the output layer) to each mini-batch's BPR loss."""

    mlp_l2: float = 0.0
    output_l2: float = 0.0

    def _loss(self, params, batch, mask, key, step, aux):
        loss = super()._loss(params, batch, mask, key, step, aux)
        if self.mlp_l2:
            loss = loss + self.mlp_l2 * 0.5 * sum(jnp.sum(layer["w"] ** 2) for layer in params["mlp"])
        if self.output_l2:
            loss = loss + self.output_l2 * 0.5 * jnp.sum(params["out"] ** 2)
        return loss


def _zero_biases(n_users: int, n_items: int) -> dict:
    return {
        "global_bias": jnp.zeros((), jnp.float32),
        "user_bias": jnp.zeros(n_users, jnp.float32),
        "item_bias": jnp.zeros(n_items, jnp.float32),
    }


def _blockwise_scores(block_scores, params, users: np.ndarray, n_items: int, latent_size: int) -> np.ndarray:
    # users × all items in blocks of users that keep the (b, m, d) MLP hidden state ≈ 64 MiB.
    block = max(1, (1 << 24) // (n_items * latent_size))
    out = [np.asarray(block_scores(params, jnp.asarray(users[start:start + block])))
           for start in range(0, len(users), block)]
    return np.concatenate(out) if out else np.zeros((0, n_items), np.float32)


def _check_optimizer(optimizer: Any) -> str:
    if optimizer not in NEUMF_OPTIMIZERS:
        raise ParameterError(f"optimizer must be one of {NEUMF_OPTIMIZERS}, got {optimizer!r}.")
    return optimizer


# ----------------------------------------------------------------------------------------------------------
# the towers
# ----------------------------------------------------------------------------------------------------------
class GMF(_DenseWeightPenalty, BPRRecommender):
    """He et al.'s generalised MF with the paper's biases: ``α + β_u + β_i + w·(γ_u ⊙ γ_i)``, BPR.

    NeuMF's GMF branch as a model of its own (the first tower :class:`NeuMF` pre-trains). Dropout applies to
    the embeddings; ``l2`` as :class:`~infae_kit.models.mf.MF`.

    Args:
        latent_size, learning_rate, dropout, l2: as :class:`~infae_kit.models.mf.MF`.
        output_l2: weight of ``½ ‖w‖²`` added to each mini-batch loss. Without it the L2 on the embeddings
            does not bind: scaling ``γ_u, γ_i`` by ``1/√c`` and ``w`` by ``c`` keeps every score and divides
            that penalty by ``c``.
        batch_size, epochs, eval_every, patience, seed, progress: training loop (see ``fit``).
    """

    name = "gmf"
    _extra_config = ("output_l2",)

    def __init__(self, latent_size: int = 64, learning_rate: float = 0.001, dropout: float = 0.0, l2: float = 1e-4,
                 output_l2: float = 0.0, **training: Any) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.output_l2 = non_negative_float("output_l2", output_l2)

    def _init_params(self, key):
        keys = jax.random.split(key, 3)
        d = self.latent_size
        return {
            **_zero_biases(self.n_users_, self.n_items_),
            "gmf_user": normal_init(keys[0], (self.n_users_, d), 0.1),
            "gmf_item": normal_init(keys[1], (self.n_items_, d), 0.1),
            "out": glorot_init(keys[2], d, 1)[:, 0],
        }

    def _pair_scores(self, params, users, items, key, train):
        gu, gi = _embedding_pair(params, "gmf_user", "gmf_item", users, items, jax.random.split(key, 2),
                                 self.dropout, train)
        return _biases(params, users, items) + (gu * gi) @ params["out"]

    def _l2_terms(self, params, users, pos, neg):
        return (params["item_bias"][pos] ** 2 + params["item_bias"][neg] ** 2
                + _embedding_l2(params, "gmf_user", "gmf_item", users, pos, neg))

    def _score_users(self, params, users, X_rows):
        return _blockwise_scores(_gmf_block_scores, params, users, self.n_items_, self.latent_size)


class NCFMLP(_DenseWeightPenalty, BPRRecommender):
    """He et al.'s MLP model with the paper's biases: ``α + β_u + β_i + w·MLP([γ_u; γ_i])``, BPR.

    NeuMF's MLP branch as a model of its own (the second tower :class:`NeuMF` pre-trains): ``n_layers`` ReLU
    layers of width ``latent_size`` over the concatenated embeddings, then one linear output.

    Args:
        latent_size, learning_rate, dropout, l2: as :class:`~infae_kit.models.mf.MF`.
        n_layers: MLP depth (Table 3: {1, 2, 3}).
        mlp_l2: weight of ``½ Σ_l ‖W_l‖²`` over the MLP layers' weight matrices, added to each mini-batch loss.
        output_l2: weight of ``½ ‖w‖²`` (the output layer), added to each mini-batch loss.
        batch_size, epochs, eval_every, patience, seed, progress: training loop (see ``fit``).
    """

    name = "ncf_mlp"
    _extra_config = ("n_layers", "mlp_l2", "output_l2")

    def __init__(self, latent_size: int = 64, n_layers: int = 1, learning_rate: float = 0.001, dropout: float = 0.0,
                 l2: float = 1e-4, mlp_l2: float = 0.0, output_l2: float = 0.0, **training: Any) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = positive_int("n_layers", n_layers)
        self.mlp_l2 = non_negative_float("mlp_l2", mlp_l2)
        self.output_l2 = non_negative_float("output_l2", output_l2)

    def _init_params(self, key):
        keys = jax.random.split(key, 3 + self.n_layers)
        d = self.latent_size
        return {
            **_zero_biases(self.n_users_, self.n_items_),
            "mlp_user": normal_init(keys[0], (self.n_users_, d), 0.1),
            "mlp_item": normal_init(keys[1], (self.n_items_, d), 0.1),
            "mlp": _mlp_layers(keys[3:], d, self.n_layers),
            "out": glorot_init(keys[2], d, 1)[:, 0],
        }

    def _pair_scores(self, params, users, items, key, train):
        mu, mi = _embedding_pair(params, "mlp_user", "mlp_item", users, items, jax.random.split(key, 2),
                                 self.dropout, train)
        return _biases(params, users, items) + _mlp_forward(params["mlp"], mu, mi) @ params["out"]

    def _l2_terms(self, params, users, pos, neg):
        return (params["item_bias"][pos] ** 2 + params["item_bias"][neg] ** 2
                + _embedding_l2(params, "mlp_user", "mlp_item", users, pos, neg))

    def _score_users(self, params, users, X_rows):
        return _blockwise_scores(_ncf_mlp_block_scores, params, users, self.n_items_, self.latent_size)


def neumf_params_from_towers(gmf_params: dict, mlp_params: dict, alpha: float = 0.5) -> dict:
    """NeuMF's initial parameters from trained :class:`GMF` and :class:`NCFMLP` parameters (He et al. 2017).

    The embeddings and MLP layers are the towers'; the output layer is ``[α·w_GMF ; (1 − α)·w_MLP]`` and each
    bias ``α·b_GMF + (1 − α)·b_MLP``, so that NeuMF's score is ``α·s_GMF + (1 − α)·s_MLP`` before fine-tuning.

    Args:
        gmf_params: ``GMF.params_`` (``gmf_user`` (n, d), ``gmf_item`` (m, d), ``out`` (d,), biases).
        mlp_params: ``NCFMLP.params_`` (``mlp_user`` (n, d), ``mlp_item`` (m, d), ``mlp`` layers, ``out`` (d,),
            biases), same n, m and d.
        alpha: the GMF tower's weight, in (0, 1).

    Returns:
        A parameter tree with the structure of ``NeuMF.params_`` (``out`` of shape (2d,)).

    Raises:
        ParameterError: ``alpha`` outside (0, 1), or towers of different shapes.
    """
    alpha = _check_alpha(alpha)
    for name in ("gmf_user", "gmf_item", "out"):
        if name not in gmf_params:
            raise ParameterError(f"gmf_params has no {name!r}: pass the params_ of a fitted GMF.")
    for name in ("mlp_user", "mlp_item", "mlp", "out"):
        if name not in mlp_params:
            raise ParameterError(f"mlp_params has no {name!r}: pass the params_ of a fitted NCFMLP.")
    if (np.shape(gmf_params["gmf_user"]) != np.shape(mlp_params["mlp_user"])
            or np.shape(gmf_params["gmf_item"]) != np.shape(mlp_params["mlp_item"])):
        raise ParameterError(
            f"the towers have different shapes (GMF users × d {np.shape(gmf_params['gmf_user'])}, items × d "
            f"{np.shape(gmf_params['gmf_item'])}; MLP {np.shape(mlp_params['mlp_user'])}, "
            f"{np.shape(mlp_params['mlp_item'])}): train both on the same matrix with the same latent_size."
        )

    def mix(name):
        return alpha * jnp.asarray(gmf_params[name]) + (1.0 - alpha) * jnp.asarray(mlp_params[name])

    return {
        "global_bias": mix("global_bias"),
        "user_bias": mix("user_bias"),
        "item_bias": mix("item_bias"),
        "gmf_user": jnp.asarray(gmf_params["gmf_user"]),
        "gmf_item": jnp.asarray(gmf_params["gmf_item"]),
        "mlp_user": jnp.asarray(mlp_params["mlp_user"]),
        "mlp_item": jnp.asarray(mlp_params["mlp_item"]),
        "mlp": [{"w": jnp.asarray(layer["w"]), "b": jnp.asarray(layer["b"])} for layer in mlp_params["mlp"]],
        "out": jnp.concatenate([alpha * jnp.asarray(gmf_params["out"]),
                                (1.0 - alpha) * jnp.asarray(mlp_params["out"])]),
    }


def _check_alpha(alpha: Any) -> float:
    try:
        out = float(alpha)
    except (TypeError, ValueError):
        raise ParameterError(f"pretrain_alpha must be a number in (0, 1), got {alpha!r}.") from None
    if not 0.0 < out < 1.0:
        raise ParameterError(
            f"pretrain_alpha must be in (0, 1) (the GMF tower's weight in NeuMF's output layer; He et al.: 0.5), "
            f"got {alpha!r}: 0 or 1 would discard one pre-trained tower."
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# the tower cache
# ----------------------------------------------------------------------------------------------------------
def default_tower_cache_dir() -> Path:
    """Where :class:`NeuMF` caches its pre-trained towers by default: ``<kit cache>/neumf-towers``
    (:func:`infae_kit.paths.cache_dir`, i.e. ``$INFAE_CACHE_DIR`` or ``~/.cache/infae_kit``)."""
    from infae_kit.paths import cache_dir

    return cache_dir() / "neumf-towers"


def _matrix_sha256(X: sp.csr_matrix | None) -> str | None:
    if X is None:
        return None
    X = sp.csr_matrix(X)
    X.sort_indices()
    h = hashlib.sha256(repr(X.shape).encode("ascii"))
    for arr in (X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float32)):
        h.update(arr.tobytes())
    return h.hexdigest()


def _tower_cache_key(tower: BPRRecommender, X: sp.csr_matrix, validation: sp.csr_matrix | None) -> dict:
    return {"format": TOWER_CACHE_FORMAT, "tower": tower.name, "config": tower.config(),
            "train_sha256": _matrix_sha256(X), "validation_sha256": _matrix_sha256(validation)}


def tower_cache_path(tower: BPRRecommender, X: MatrixLike, validation: MatrixLike | None = None,
                     cache_dir: str | os.PathLike | None = None) -> Path:
    """The file that holds ``tower`` trained on ``X`` (early stopping on ``validation``):
    ``<cache_dir>/neumf-<tower name>-<16 hex>.npz``, the hex a SHA-256 of the tower's configuration (seed
    included), the cache format and the SHA-256 of the binarised ``X`` and of ``validation``."""
    X = binary_interactions(X, "X", require_interactions=True)
    validation = None if validation is None else check_interactions(validation, "validation", n_items=X.shape[1])
    blob = json.dumps(_tower_cache_key(tower, X, validation), sort_keys=True)
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_tower_cache_dir()
    return folder / f"neumf-{tower.name}-{digest}.npz"


def _read_tower(path: Path, key: dict, fresh: dict) -> tuple[dict, dict] | None:
    """The cached parameters and training record, or None (missing, or damaged: then set aside)."""
    if not path.exists():
        return None
    fresh_leaves, treedef = jax.tree_util.tree_flatten(fresh)
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key = json.loads(str(npz["key"]))
            info = json.loads(str(npz["info"]))
            leaves = [np.array(npz[f"leaf_{i}"]) for i in range(len(fresh_leaves))]
        if stored_key != json.loads(json.dumps(key)):
            raise ValueError("it holds another configuration or data")
        for i, (a, b) in enumerate(zip(fresh_leaves, leaves)):
            if tuple(a.shape) != b.shape or not np.all(np.isfinite(b)):
                raise ValueError(f"parameter {i} has shape {b.shape} (expected {tuple(a.shape)}) or is not finite")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        logger.warning("Pre-trained tower cache %s is unusable (%s); moved to %s and training again.", path, exc,
                       aside)
        return None
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(b, dtype=a.dtype) for a, b in zip(fresh_leaves,
                                                                                                 leaves)])
    return params, info


def _write_tower(path: Path, key: dict, info: dict, params: dict) -> None:
    leaves = jax.tree_util.tree_leaves(params)
    buf = io.BytesIO()
    np.savez(buf, key=np.array(json.dumps(key)), info=np.array(json.dumps(info)),
             **{f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------------------
# NeuMF
# ----------------------------------------------------------------------------------------------------------
class NeuMF(_DenseWeightPenalty, BPRRecommender):
    """Neural matrix factorisation (He et al., 2017) with biases: ``α + β_u + β_i + φ(γ_u, γ_i)``, BPR.

    φ concatenates the GMF branch ``γ^G_u ⊙ γ^G_i`` and an MLP tower over ``[γ^M_u; γ^M_i]`` (``n_layers``
    ReLU layers of width ``latent_size``) and maps them to a score with one linear layer. The two branches
    have their own embeddings, as in the NeuMF paper. Dropout applies to the embeddings. The defaults train
    it as the paper describes (no pre-training, Adam, no L2 on the MLP); the module docstring describes He et
    al.'s recipe, which the other options add.

    Args:
        latent_size, learning_rate, dropout, l2: as :class:`~infae_kit.models.mf.MF` (l2 covers all four
            embedding tables); ``learning_rate`` is the step of ``optimizer`` (of the fine-tuning when
            pre-trained).
        n_layers: MLP depth (Table 3: {1, 2, 3}).
        mlp_l2: weight of ``½ Σ_l ‖W_l‖²`` over the MLP layers' weight matrices, added to each mini-batch loss.
        output_l2: weight of ``½ ‖w_out‖²`` (the output layer), added to each mini-batch loss: without it ``l2``
            does not bind on the GMF branch (see :class:`GMF`).
        optimizer: ``"adam"`` or ``"sgd"`` (plain SGD, no momentum): NeuMF's own training.
        pretrain: first train a :class:`GMF` and an :class:`NCFMLP` tower with this model's latent size,
            layers, dropout, l2, mlp_l2, output_l2, batch size, early stopping and seed (Adam), then start NeuMF from
            :func:`neumf_params_from_towers`. With ``validation`` the towers early-stop on it too.
        pretrain_epochs: the towers' epoch cap (default: ``epochs``). Used only with ``pretrain=True``.
        pretrain_learning_rate: the towers' Adam step (default: ``learning_rate``). Used only with pretraining.
        pretrain_alpha: the GMF tower's weight α in the initial output layer, in (0, 1) (He et al.: 0.5).
        pretrain_cache_dir: folder of the tower cache (default :func:`default_tower_cache_dir`); a damaged
            file there is moved aside and the tower trained again. Not a hyper-parameter: not in ``config()``.
        batch_size, epochs, eval_every, patience, seed, progress: training loop (see ``fit``).
    """

    name = "neumf"
    _extra_config = ("n_layers", "mlp_l2", "output_l2", "optimizer", "pretrain", "pretrain_epochs", "pretrain_learning_rate",
                     "pretrain_alpha")

    def __init__(self, latent_size: int = 64, n_layers: int = 1, learning_rate: float = 0.001, dropout: float = 0.0,
                 l2: float = 1e-4, mlp_l2: float = 0.0, output_l2: float = 0.0, optimizer: str = "adam",
                 pretrain: bool = False,
                 pretrain_epochs: int | None = None, pretrain_learning_rate: float | None = None,
                 pretrain_alpha: float = 0.5, pretrain_cache_dir: str | os.PathLike | None = None,
                 **training: Any) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = positive_int("n_layers", n_layers)
        self.mlp_l2 = non_negative_float("mlp_l2", mlp_l2)
        self.output_l2 = non_negative_float("output_l2", output_l2)
        self.optimizer = _check_optimizer(optimizer)
        if not isinstance(pretrain, (bool, np.bool_)):
            raise ParameterError(f"pretrain must be True or False, got {pretrain!r}.")
        self.pretrain = bool(pretrain)
        self.pretrain_epochs = None if pretrain_epochs is None else positive_int("pretrain_epochs", pretrain_epochs)
        self.pretrain_learning_rate = (None if pretrain_learning_rate is None
                                       else positive_float("pretrain_learning_rate", pretrain_learning_rate))
        self.pretrain_alpha = _check_alpha(pretrain_alpha)
        self.pretrain_cache_dir = None if pretrain_cache_dir is None else Path(pretrain_cache_dir)
        self.towers_ = None

    # --- the model ----------------------------------------------------------------------------------------
    def _init_params(self, key):
        d = self.latent_size
        keys = jax.random.split(key, 6 + self.n_layers)
        return {
            **_zero_biases(self.n_users_, self.n_items_),
            "gmf_user": normal_init(keys[0], (self.n_users_, d), 0.1),
            "gmf_item": normal_init(keys[1], (self.n_items_, d), 0.1),
            "mlp_user": normal_init(keys[2], (self.n_users_, d), 0.1),
            "mlp_item": normal_init(keys[3], (self.n_items_, d), 0.1),
            "mlp": _mlp_layers(keys[6:], d, self.n_layers),
            "out": glorot_init(keys[4], 2 * d, 1)[:, 0],
        }

    def _pair_scores(self, params, users, items, key, train):
        keys = jax.random.split(key, 4)
        gu, gi = _embedding_pair(params, "gmf_user", "gmf_item", users, items, keys[:2], self.dropout, train)
        mu, mi = _embedding_pair(params, "mlp_user", "mlp_item", users, items, keys[2:], self.dropout, train)
        h = _mlp_forward(params["mlp"], mu, mi)
        phi = jnp.concatenate([gu * gi, h], axis=-1) @ params["out"]
        return _biases(params, users, items) + phi

    def _l2_terms(self, params, users, pos, neg):
        total = params["item_bias"][pos] ** 2 + params["item_bias"][neg] ** 2
        for u, i in (("gmf_user", "gmf_item"), ("mlp_user", "mlp_item")):
            total = total + _embedding_l2(params, u, i, users, pos, neg)
        return total

    def _optimizer(self) -> optax.GradientTransformation:
        return optax.sgd(self.learning_rate) if self.optimizer == "sgd" else optax.adam(self.learning_rate)

    def _score_users(self, params, users, X_rows):
        # the first MLP layer is split into its user and item halves: no (user, item) concatenation per pair
        return _blockwise_scores(_neumf_block_scores, params, users, self.n_items_, self.latent_size)

    # --- pre-training -------------------------------------------------------------------------------------
    def make_towers(self) -> tuple[GMF, NCFMLP]:
        """The unfitted :class:`GMF` and :class:`NCFMLP` that ``pretrain=True`` trains (this model's settings)."""
        common = dict(latent_size=self.latent_size, dropout=self.dropout, l2=self.l2, batch_size=self.batch_size,
                      learning_rate=self.pretrain_learning_rate or self.learning_rate,
                      epochs=self.pretrain_epochs or self.epochs, eval_every=self.eval_every, patience=self.patience,
                      seed=self.seed, progress=self.progress)
        return (GMF(output_l2=self.output_l2, **common),
                NCFMLP(n_layers=self.n_layers, mlp_l2=self.mlp_l2, output_l2=self.output_l2, **common))

    def pretrain_towers(self, X: MatrixLike, validation: MatrixLike | None = None) -> tuple[dict, dict]:
        """Train :meth:`make_towers` on ``X`` (early stopping on ``validation``), or read them from the cache.

        Args:
            X: ``(n_users, n_items)`` train interactions.
            validation: optional ``(n_users, n_items)`` held-out positives of the same users.

        Returns:
            ``(gmf_params, mlp_params)``; ``towers_`` records, per tower, its cache file, whether it came from
            the cache, its best epoch, best validation HR@100 and training seconds.
        """
        X = self._train_matrix(X)
        if validation is not None:
            validation = check_interactions(validation, "validation", n_items=X.shape[1])
        params, record = [], {}
        for tower in self.make_towers():
            path = tower_cache_path(tower, X, validation, self.pretrain_cache_dir)
            key = _tower_cache_key(tower, X, validation)
            tower.n_users_, tower.n_items_ = X.shape
            cached = _read_tower(path, key, tower._init_params(jax.random.PRNGKey(0)))
            if cached is None:
                tower.fit(X, validation=validation)
                info = {"best_epoch": int(tower.best_epoch_), "best_validation": tower.best_validation_,
                        "train_time_s": float(tower.train_time_s_), "epochs_run": int(tower.history_[-1]["epoch"])}
                _write_tower(path, key, info, tower.params_)
                tower_params, from_cache = tower.params_, False
            else:
                (tower_params, info), from_cache = cached, True
            params.append(tower_params)
            record[tower.name] = {**info, "from_cache": from_cache, "path": str(path)}
        self.towers_ = record
        return params[0], params[1]

    def fit(self, X: MatrixLike, validation: MatrixLike | None = None, *, init_params: Any = None,
            init_step: int = 0) -> "NeuMF":
        """Train (see :meth:`TrainedRecommender.fit`); with ``pretrain=True`` start from the pre-trained towers.

        Raises:
            ParameterError: ``init_params`` together with ``pretrain=True`` (both set the starting point).
        """
        if self.pretrain:
            if init_params is not None:
                raise ParameterError(
                    "NeuMF(pretrain=True) starts from its pre-trained towers; pass init_params (a warm start) "
                    "only with pretrain=False."
                )
            gmf_params, mlp_params = self.pretrain_towers(X, validation)
            init_params = neumf_params_from_towers(gmf_params, mlp_params, self.pretrain_alpha)
        return super().fit(X, validation, init_params=init_params, init_step=init_step)


# ----------------------------------------------------------------------------------------------------------
# scoring every item (jitted, per block of users)
# ----------------------------------------------------------------------------------------------------------
def _mlp_hidden_all_items(params, users):
    """The MLP output for users × every item, ``(b, m, d)``, with the first layer split into user and item halves."""
    d = params["mlp_user"].shape[1]
    first = params["mlp"][0]
    hu = params["mlp_user"][users] @ first["w"][:d]  # (b, d)
    hi = params["mlp_item"] @ first["w"][d:] + first["b"]  # (m, d)
    h = jax.nn.relu(hu[:, None, :] + hi[None, :, :])
    for layer in params["mlp"][1:]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h


def _bias_block(params, users):
    return params["global_bias"] + params["user_bias"][users][:, None] + params["item_bias"][None, :]


@jax.jit
def _neumf_block_scores(params, users):
    d = params["gmf_user"].shape[1]
    out_gmf, out_mlp = params["out"][:d], params["out"][d:]
    gmf = (params["gmf_user"][users] * out_gmf) @ params["gmf_item"].T  # (b, m)
    return _bias_block(params, users) + gmf + _mlp_hidden_all_items(params, users) @ out_mlp


@jax.jit
def _gmf_block_scores(params, users):
    return _bias_block(params, users) + (params["gmf_user"][users] * params["out"]) @ params["gmf_item"].T


@jax.jit
def _ncf_mlp_block_scores(params, users):
    return _bias_block(params, users) + _mlp_hidden_all_items(params, users) @ params["out"]
