"""Recommenders: the NTK, ∞-AE, the closed-form baselines and the trained competitors of Table 1.

* :mod:`~infae_kit.models.base` — the :class:`~infae_kit.models.base.Recommender` interface.
* :mod:`~infae_kit.models.ntk` — closed-form NTK of an infinitely wide ReLU network, in JAX.
* :mod:`~infae_kit.models.infinite_ae` — ∞-AE: exact kernel ridge regression with that NTK, λ selection.
* :mod:`~infae_kit.models.landmark` — landmark ∞-AE: m landmark rows as the kernel basis, every user a target
  (Nyström KRR streamed over user blocks; exact at m = U), with its landmark rules and kernel pieces in
  :mod:`~infae_kit.models.landmark_basis` and its streamed normal equations in
  :mod:`~infae_kit.models.landmark_solver`.
* :mod:`~infae_kit.models.baselines` — PopRec and EASE (closed forms).
* :mod:`~infae_kit.models.bias`, :mod:`~infae_kit.models.mf`, :mod:`~infae_kit.models.neumf`,
  :mod:`~infae_kit.models.lightgcn`, :mod:`~infae_kit.models.mvae` — the trained competitors, one per file,
  sharing :mod:`~infae_kit.models.training`; :mod:`~infae_kit.models.competitors` is their registry, recorded
  configurations and search.
* :mod:`~infae_kit.models.reference` — neural-tangents as the reference the kit's NTK is checked against.

Import the modules themselves; this package imports nothing so that ``import infae_kit.models.baselines`` does
not load JAX.
"""

__all__: list[str] = []
