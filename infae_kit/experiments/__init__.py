"""The paper's data-centric experiments (§5, Appendix B.6).

* :mod:`~infae_kit.experiments.noise` — the flip-noise model.
* :mod:`~infae_kit.experiments.sampling` — interaction-RNS, user-RNS, head-user, SVP-CF-user.
* :mod:`~infae_kit.experiments.arcf` — AR-CF's user generator (a conditional GAN).
* :mod:`~infae_kit.experiments.sweeps`, :mod:`~infae_kit.experiments.sweep_figures` — budget sweeps, cached
  cell by cell, and their figures.
* :mod:`~infae_kit.experiments.scoreboard`, :mod:`~infae_kit.experiments.privacy` — de-anonymization attacks.
* :mod:`~infae_kit.experiments.continual`, :mod:`~infae_kit.experiments.continual_models` — continual learning.
* :mod:`~infae_kit.experiments.scale`, :mod:`~infae_kit.experiments.scale_figures` — landmark ∞-AE against the
  paper's user sampling and exact ∞-AE (notebook 08), and its figures.
"""

__all__: list[str] = []
