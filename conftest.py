"""Session-wide settings for ``pytest tests notebooks --nbval-lax`` (unit tests and every notebook).

Notebooks executed by the test suite (nbval, papermill) run their CI-sized preset and write their figures, result
JSON and caches into a temporary folder, never over the reproduced ones in ``figures/`` and ``runs/``. Each
variable is only set when the caller has not set it, so ``INFAE_FIGURES_DIR=... pytest`` still works.

Tests marked ``notebook_results`` (``tests/test_notebook_results.py``) read what the notebooks wrote, so they are
moved after every other test: after nbval has run the notebooks.
"""

import os
import tempfile

_SCRATCH = tempfile.mkdtemp(prefix="infae_kit-tests-")


def pytest_configure(config):
    os.environ.setdefault("INFAE_NOTEBOOK_PRESET", "ci")
    os.environ.setdefault("INFAE_FIGURES_DIR", os.path.join(_SCRATCH, "figures"))
    os.environ.setdefault("INFAE_RUNS_DIR", os.path.join(_SCRATCH, "runs"))


def pytest_collection_modifyitems(session, config, items):
    last = [item for item in items if item.get_closest_marker("notebook_results")]
    if last:
        items[:] = [item for item in items if not item.get_closest_marker("notebook_results")] + last
