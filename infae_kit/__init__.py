"""infae_kit: ∞-AE and DISTILL-CF (Sachdeva et al., NeurIPS 2022) as a notebook-first research kit.

Submodules (import what you need; importing the package itself is cheap):

* :mod:`infae_kit.data` — datasets, the paper's split, registry, downloads, synthetic data, statistics.
* :mod:`infae_kit.ntk` — closed-form NTK of an infinitely wide fully-connected ReLU network, in JAX.
* :mod:`infae_kit.infinite_ae` — ∞-AE: kernel ridge regression with that NTK, λ selection, evaluation.
* :mod:`infae_kit.baselines` — PopRec and EASE.
* :mod:`infae_kit.sampling` / :mod:`infae_kit.noise` — the §5 data samplers (B.2) and the flip-noise model.
* :mod:`infae_kit.competitors` — Bias-only, MF, NeuMF, LightGCN and MVAE (JAX/optax), their Table 3 search.
* :mod:`infae_kit.metrics` / :mod:`infae_kit.evaluation` — AUC, HR@k, nDCG@k, PSP@k; the paper's protocol.
* :mod:`infae_kit.results`, :mod:`infae_kit.plotting`, :mod:`infae_kit.runner` — notebook plumbing.
"""

__version__ = "0.1.0"
