"""The paper's evaluation: metrics, protocol, hyper-parameter selection, results files and figures.

* :mod:`~infae_kit.evaluation.metrics` — AUC, HR@k, nDCG@k, PSP@k, top-k lists.
* :mod:`~infae_kit.evaluation.protocol` — the validation and test passes for any model that scores users.
* :mod:`~infae_kit.evaluation.selection` — pick a hyper-parameter on validation, then test.
* :mod:`~infae_kit.evaluation.results` — the results JSON every notebook writes, and tables of them.
* :mod:`~infae_kit.evaluation.plotting` — the kit's figure theme and reproducible figure files.
"""

__all__: list[str] = []
